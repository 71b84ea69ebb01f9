// Lines written by Go's own structured logger (log/slog), as JSON and as logfmt (its text handler),
// for tests/test_structured.py: real output of a real runtime.
package main

import (
	"errors"
	"log/slog"
	"os"
)

func main() {
	asJSON := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("logger", "payments.api")
	asText := slog.New(slog.NewTextHandler(os.Stdout, nil))
	refused := errors.New("dial tcp 10.0.0.7:5432: connect: connection refused")
	for i := 0; i < 3; i++ {
		asJSON.Info("order placed", "order_id", 4711+i, "amount", 12.5, "user", "u-17")
		asText.Info("order placed", "order_id", 4711+i, "amount", 12.5, "user", "u-17")
	}
	asJSON.Error("payment failed", "order_id", 4712, "err", refused, "password", "hunter2")
	asText.Warn("retrying payment", "attempt", 2, "err", refused)
}
