package daemon

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

const testCast = `{"version": 2, "width": 80, "height": 24, "timestamp": 1, "env": {"TERM": "xterm"}}
[0.5, "o", "hello "]
[1.0, "i", "typed"]
[1.5, "r", "90x30"]
[2.0, "m", "detach"]
[3.0, "o", "w\u00f6rld\r\n"]
`

func TestCastPlayerHonoursTimestampsAndSpeed(t *testing.T) {
	for _, speed := range []float64{1, 4} {
		var waits []time.Duration // from the start: a fake sleep takes no time
		p := castPlayer{Speed: speed, Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			return nil
		}}
		var out bytes.Buffer
		hdr, err := p.Play(context.Background(), strings.NewReader(testCast), &out)
		if err != nil || hdr.Width != 80 || hdr.Height != 24 {
			t.Fatalf("play: %v, header %+v", err, hdr)
		}
		if out.String() != "hello wörld\r\n" {
			t.Fatalf("output %q: only output events are shown", out.String())
		}
		if len(waits) != 2 {
			t.Fatalf("waited %d times, want once per output event", len(waits))
		}
		for i, at := range []float64{0.5, 3.0} {
			want := time.Duration(at / speed * float64(time.Second))
			if waits[i] < want-100*time.Millisecond || waits[i] > want {
				t.Errorf("speed %v: event %d due after %v, want about %v", speed, i, waits[i], want)
			}
		}
	}
}

// -idle cuts every pause between two events (of any kind) to its
// length: a long detach plays as a short one.
func TestCastPlayerCutsIdlePauses(t *testing.T) {
	var waits []time.Duration
	p := castPlayer{Idle: 0.25, Sleep: func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}}
	cast := testCast + `[603.0, "o", "back after ten minutes"]` + "\n"
	if _, err := p.Play(context.Background(), strings.NewReader(cast), &bytes.Buffer{}); err != nil || len(waits) != 3 {
		t.Fatalf("play: %v, %d waits", err, len(waits))
	}
	// Pauses of 0.5 s before the first event and after it three times,
	// then of 1 s and of 600 s: each cut to 0.25 s.
	for i, at := range []float64{0.25, 1.25, 1.5} {
		want := time.Duration(at * float64(time.Second))
		if waits[i] < want-100*time.Millisecond || waits[i] > want {
			t.Errorf("event %d due after %v, want about %v", i, waits[i], want)
		}
	}
}

func TestCastPlayerToEndDoesNotWait(t *testing.T) {
	p := castPlayer{ToEnd: true, Sleep: func(context.Context, time.Duration) error {
		t.Fatal("-end waited")
		return nil
	}}
	var out bytes.Buffer
	if _, err := p.Play(context.Background(), strings.NewReader(testCast), &out); err != nil || out.String() != "hello wörld\r\n" {
		t.Fatalf("play -end: %q, %v", out.String(), err)
	}
}

func TestCastPlayerRefusesWhatIsNotAsciicast(t *testing.T) {
	for _, in := range []string{"", "not json\n", `{"version": 1}` + "\n", testCast + `[1, "o"]` + "\n", testCast + `[4.0, "o", "cut`} {
		if _, err := (castPlayer{ToEnd: true}).Play(context.Background(), strings.NewReader(in), &bytes.Buffer{}); err == nil {
			t.Errorf("played %q without an error", in)
		}
	}
}
