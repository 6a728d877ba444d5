package e2e

import (
	"encoding/json"
	"testing"

	"switchyard/broker"
)

func decodeStatus(t testing.TB, b []byte) broker.Status {
	t.Helper()
	var st broker.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("decode status: %v\n%s", err, b)
	}
	return st
}
