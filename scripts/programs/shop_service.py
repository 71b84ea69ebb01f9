"""A small Python service for the real-program benchmark (scripts/bench_programs.py): it serves
"orders" at a steady rate and logs through the standard logging module, as text or as JSON
(python-json-logger's shape), and carries out the fault the benchmark writes into its control
file: an unreachable dependency, a full disk (writes to /dev/full), a bad input at a new call site.
The errors are real: the kernel and the interpreter raise them."""
import json
import logging
import random
import socket
import sys
import time
import traceback
from pathlib import Path


class JsonFormatter(logging.Formatter):
    def format(self, record):
        out = {"asctime": self.formatTime(record), "levelname": record.levelname, "name": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(out)


def setup(style):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if style == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])


log = logging.getLogger("shop.orders")
inventory = logging.getLogger("shop.inventory")


def call_payments(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def write_receipt(path, order):
    with open(path, "w") as handle:
        handle.write(f"receipt {order}\n" * 1000)
        handle.flush()


def parse_coupon(text):
    return {"SAVE10": 10, "SAVE20": 20}[text]


def serve(order, rng):
    log.info("order %d received from 10.0.%d.%d", order, rng.randint(0, 3), rng.randint(1, 250))
    if rng.random() < 0.3:
        inventory.info("reserved %d items of sku-%d for order %d", rng.randint(1, 5), rng.randint(100, 999), order)
    log.info("order %d paid in %d ms", order, rng.randint(20, 400))


def fault(name, order):
    if name == "dependency_down":
        for attempt in range(3):
            try:
                call_payments(1)   # nothing listens on port 1: connection refused
            except OSError:
                log.exception("payment for order %d failed (attempt %d)", order, attempt + 1)
    elif name == "disk_full":
        for _ in range(2):
            try:
                write_receipt("/dev/full", order)   # ENOSPC from the kernel
            except OSError:
                log.exception("writing the receipt of order %d failed", order)
    elif name == "bad_input":
        for coupon in ("SAVE15", "FREE"):
            try:
                parse_coupon(coupon)
            except KeyError:
                log.exception("order %d: coupon %s rejected", order, coupon)


def main(style, control, seconds, rate):
    setup(style)
    rng = random.Random(7 if style == "json" else 3)
    control = Path(control)
    order, end, done = 1000, time.monotonic() + seconds, ""
    log.info("shop service started (%s logs)", style)
    while time.monotonic() < end:
        serve(order, rng)
        asked = control.read_text().strip() if control.exists() else ""
        if asked and asked != done:
            fault(asked.split(":")[0], order)
            done = asked
        sys.stdout.flush()
        order += 1
        time.sleep(1.0 / rate)
    log.info("shop service stopping")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
