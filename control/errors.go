package control

import (
	"errors"
	"strings"
)

// RemoteError is an error the peer returned for a call, or the reason appd
// gave when it rejected a spawn channel. Code is one of the Code* constants;
// Message is one line a user may be shown.
type RemoteError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *RemoteError) Error() string { return e.Code + ": " + e.Message }

// NewError returns a RemoteError with the given code and one-line message.
func NewError(code, msg string) *RemoteError { return &RemoteError{Code: code, Message: msg} }

// ErrorCode returns the code of a RemoteError anywhere in err's chain, or "".
func ErrorCode(err error) string {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// ParseRejection turns a rejection message of the form "code: message"
// (as appd writes when it rejects a spawn channel) into a RemoteError.
// A message without a known code prefix becomes CodeInternal.
func ParseRejection(msg string) *RemoteError {
	code, rest, ok := strings.Cut(msg, ": ")
	switch {
	case ok && knownCode(code):
		return &RemoteError{Code: code, Message: rest}
	default:
		return &RemoteError{Code: CodeInternal, Message: msg}
	}
}

func knownCode(c string) bool {
	switch c {
	case CodeUnknownApp, CodeForbidden, CodeNoServer, CodeBadArgs, CodeSpawnFailed, CodeInternal, CodeNoSession, CodeUnavailable, CodeNotLeader:
		return true
	}
	return false
}
