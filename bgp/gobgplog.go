package bgp

import (
	"context"
	"log/slog"
	"strings"

	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
)

// slogBridge passes GoBGP's log lines to our slog logger: messages lower-cased at the first letter,
// field names to snake_case. GoBGP's Fatal/Panic become errors: the library calls them on conditions
// (a listener it cannot open) that must not kill the appliance.
type slogBridge struct {
	log *slog.Logger
}

var _ gobgplog.Logger = (*slogBridge)(nil)

func (b *slogBridge) emit(level slog.Level, msg string, fields gobgplog.Fields) {
	if !b.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(fields)+1)
	attrs = append(attrs, slog.String("component", "gobgp"))
	for k, v := range fields {
		attrs = append(attrs, slog.Any(snake(k), v))
	}
	if msg != "" {
		msg = strings.ToLower(msg[:1]) + msg[1:]
	}
	b.log.LogAttrs(context.Background(), level, msg, attrs...)
}

func snake(s string) string {
	s = strings.TrimPrefix(s, "_")
	var out strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				out.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		out.WriteRune(r)
	}
	return out.String()
}

func (b *slogBridge) Panic(msg string, f gobgplog.Fields) { b.emit(slog.LevelError, msg, f) }
func (b *slogBridge) Fatal(msg string, f gobgplog.Fields) { b.emit(slog.LevelError, msg, f) }
func (b *slogBridge) Error(msg string, f gobgplog.Fields) { b.emit(slog.LevelError, msg, f) }
func (b *slogBridge) Warn(msg string, f gobgplog.Fields)  { b.emit(slog.LevelWarn, msg, f) }
func (b *slogBridge) Info(msg string, f gobgplog.Fields)  { b.emit(slog.LevelInfo, msg, f) }

// Debug lines of GoBGP are very chatty (every KEEPALIVE); they are passed at slog debug level.
func (b *slogBridge) Debug(msg string, f gobgplog.Fields) { b.emit(slog.LevelDebug, msg, f) }

// SetLevel is ignored: the slog handler decides.
func (b *slogBridge) SetLevel(gobgplog.LogLevel) {}

// GetLevel reports debug only when the handler wants debug, so GoBGP skips building debug fields.
func (b *slogBridge) GetLevel() gobgplog.LogLevel {
	if b.log.Enabled(context.Background(), slog.LevelDebug) {
		return gobgplog.DebugLevel
	}
	return gobgplog.InfoLevel
}
