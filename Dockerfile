# The clogs worker (and the CLI) as an image.  CPU torch: the worker scores on CPU by default.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /opt/clogs

RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
COPY setup.cfg setup.py README.md ./
COPY app ./app
COPY agents ./agents
COPY tables ./tables
COPY model ./model
RUN pip install .
COPY checkpoints ./checkpoints
COPY streaming_process.py ./
COPY scripts/make_demo_data.py ./scripts/make_demo_data.py
COPY data/loghub ./data/loghub

ENV CLOGS_BROKER=kafka://kafka:29092 \
    CLOGS_ES_URL=http://elasticsearch:9200 \
    CLOGS_CHECKPOINT_DIR=/opt/clogs/checkpoints \
    CLOGS_DATA_DIR=/var/lib/clogs \
    CLOGS_WEB_HOST=0.0.0.0 \
    CLOGS_WEB_PORT=6066
VOLUME ["/var/lib/clogs"]
EXPOSE 6066
CMD ["faust", "-A", "app", "worker", "-l", "info"]
