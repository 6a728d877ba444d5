package appd

import (
	"testing"

	"golang.org/x/crypto/ssh"
)

// discardChannel is an attachment's channel that takes every write.
type discardChannel struct{ ssh.Channel }

func (discardChannel) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkEmitKeystroke is what the output path costs one echoed
// keystroke in appd, with the session's recording off, of output, and of
// output and input (one input and one output event per op): the part of
// BenchmarkKeystrokeEcho (e2e) recording adds to the keystroke's path,
// measured without the network and the machine's noise around it. The
// writer's side is played by taking the batch every 1,024 keystrokes (it
// runs on its own goroutine, off the path), so that no event is dropped.
func BenchmarkEmitKeystroke(b *testing.B) {
	for _, mode := range []string{RecordOff, RecordOutput, RecordInput} {
		name := mode
		if name == "" {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			s := &session{att: &attachment{ch: discardChannel{}}}
			if mode != RecordOff {
				s.rec = newQueue(mode == RecordInput, "bench")
			}
			key := []byte{'x'}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.rec.inputs(key)
				s.emit(key)
				if s.rec != nil && i%1024 == 1023 {
					batch, _ := s.rec.take()
					s.rec.giveBack(batch)
				}
			}
			b.StopTimer()
			if s.rec != nil && s.rec.dropped != 0 {
				b.Fatalf("%d events dropped", s.rec.dropped)
			}
		})
	}
}
