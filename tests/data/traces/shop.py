"""A small Python service for clogs' tests: it logs through the standard logging module and fails
the way services fail -- logger.exception at one call site many times, a chained exception (raise
from), an exception raised while handling another, a JSON line carrying its traceback (as
python-json-logger writes it), and finally an uncaught exception that ends the process."""
import json
import logging
import sys
import traceback

logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("shop.orders")


def price_of(order):
    return 100 // (order % 5)   # call site A: ZeroDivisionError for every fifth order


def connect():
    raise ConnectionRefusedError(111, "Connection refused")


def charge(order):
    try:
        connect()
    except OSError as exc:
        raise RuntimeError(f"payment backend unavailable for order {order}") from exc


def refund(order):
    try:
        {}["order"]
    except KeyError:
        raise ValueError(f"no refund record for order {order}")


def main(repeats):
    for i in range(repeats):
        order = 1000 + i
        log.info("order %d received from 10.0.0.%d", order, i % 7)
        try:
            price_of(i)
            log.info("order %d priced", order)
        except ZeroDivisionError:
            log.exception("pricing order %d failed", order)
    try:
        charge(2000)
    except RuntimeError:
        log.exception("charging order 2000 failed")
    try:
        refund(2001)
    except ValueError:
        log.exception("refunding order 2001 failed")
    try:
        price_of(0)
    except ZeroDivisionError:
        print(json.dumps({"asctime": "2026-12-07 10:00:00,000", "levelname": "ERROR", "name": "shop.json",
                          "message": "pricing order 2002 failed", "exc_info": traceback.format_exc().rstrip()}))
    sys.stdout.flush()
    refund(2003)   # uncaught: the interpreter prints the traceback on stderr and exits 1


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
