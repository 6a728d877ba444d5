package appd

import (
	"io"
	"log/slog"
	"testing"

	"golang.org/x/crypto/ssh"
)

// discardChannel is an attachment's channel that takes every write.
type discardChannel struct{ ssh.Channel }

func (discardChannel) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkEmitKeystroke is what the output path costs one echoed
// keystroke in appd, with the session's recording off, of output, and of
// output and input (one input and one output event per op): the part of
// BenchmarkKeystrokeEcho (e2e) recording adds, measured without the
// network and the machine's noise around it.
func BenchmarkEmitKeystroke(b *testing.B) {
	for _, mode := range []string{RecordOff, RecordOutput, RecordInput} {
		name := mode
		if name == "" {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			s := &session{att: &attachment{ch: discardChannel{}}}
			if mode != RecordOff {
				r, err := newRecorder(Recording{Dir: b.TempDir()}, newID(), "bench", mode == RecordInput,
					castHeader{Width: 80, Height: 24}, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					b.Fatal(err)
				}
				s.rec = r
				defer r.close("end")
			}
			key := []byte{'x'}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.rec.inputs(key)
				s.emit(key)
			}
		})
	}
}
