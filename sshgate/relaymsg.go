package sshgate

import (
	"encoding/json"
	"errors"

	gossh "golang.org/x/crypto/ssh"
)

// relayRequest is the extra data of a control.ChannelRelay channel, in
// SSH's own wire encoding (RFC 4251): the server's node name and the
// inner channel's type as two strings, then the inner channel's extra
// data as is, to the end. The inner request (JSON, as appd reads it) is
// thus carried byte for byte, neither escaped nor base64-encoded.
type relayRequest struct {
	Server string // node name of the app server
	Type   string // inner channel type: control.ChannelSpawn or control.ChannelAttach
	Extra  []byte `ssh:"rest"` // the inner channel's extra data
}

// marshal encodes rr as a relay channel's extra data.
func (rr relayRequest) marshal() []byte { return gossh.Marshal(&rr) }

// legacyRelayRequest is how gateways before the SSH encoding wrote a
// relay request: a JSON object with the inner request base64-encoded in
// it. A relaying gateway still reads it, so that an older gateway can
// relay through an upgraded one; "addr" (the server's address as the
// requester knew it) was never used.
type legacyRelayRequest struct {
	Server string `json:"server"`
	Type   string `json:"type"`
	Extra  []byte `json:"extra"`
}

// errMalformedRelay is decodeRelayRequest's error for extra data that is
// neither encoding.
var errMalformedRelay = errors.New("malformed relay request")

// decodeRelayRequest decodes a relay channel's extra data, in the SSH
// encoding or the legacy JSON one. The two cannot be confused: JSON starts
// with '{', which as the first byte of a string's length would make the
// server's name longer than 2 GB, far beyond maxRelayRequest.
func decodeRelayRequest(extra []byte) (relayRequest, error) {
	var rr relayRequest
	if len(extra) > 0 && extra[0] == '{' {
		var old legacyRelayRequest
		if json.Unmarshal(extra, &old) != nil {
			return rr, errMalformedRelay
		}
		return relayRequest(old), nil
	}
	if gossh.Unmarshal(extra, &rr) != nil {
		return rr, errMalformedRelay
	}
	return rr, nil
}
