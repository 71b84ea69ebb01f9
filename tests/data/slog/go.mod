module clogs.test/slog

go 1.21
