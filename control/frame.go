package control

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
)

// MaxFrame is the largest frame a Peer accepts or sends, in bytes.
const MaxFrame = 1 << 20

// envelope is the JSON body of every frame.
type envelope struct {
	ID     uint64          `json:"id,omitempty"` // 0 for notifications
	Method string          `json:"m,omitempty"`  // set on calls and notifications
	Reply  bool            `json:"r,omitempty"`  // set on replies
	Body   json.RawMessage `json:"b,omitempty"`
	Err    *RemoteError    `json:"e,omitempty"`
}

// appendFrame encodes env as one frame appended to dst.
func appendFrame(dst []byte, env *envelope) ([]byte, error) {
	body, err := json.Marshal(env)
	if err != nil {
		return dst, fmt.Errorf("control: encode %q: %w", env.Method, err)
	}
	if len(body) > MaxFrame {
		return dst, fmt.Errorf("control: frame of %d bytes exceeds %d", len(body), MaxFrame)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...), nil
}

// readFrame reads one frame and decodes its envelope.
func readFrame(r *bufio.Reader, buf []byte) (*envelope, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, buf, fmt.Errorf("control: frame of %d bytes exceeds %d", n, MaxFrame)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, buf, fmt.Errorf("control: read frame body: %w", err)
	}
	env, err := decodeEnvelope(buf)
	return env, buf, err
}

// decodeEnvelope parses and sanity-checks one frame body.
func decodeEnvelope(b []byte) (*envelope, error) {
	env := new(envelope)
	if err := json.Unmarshal(b, env); err != nil {
		return nil, fmt.Errorf("control: decode frame: %w", err)
	}
	switch {
	case env.Reply && env.ID == 0:
		return nil, fmt.Errorf("control: reply without id")
	case !env.Reply && env.Method == "":
		return nil, fmt.Errorf("control: message without method")
	}
	return env, nil
}
