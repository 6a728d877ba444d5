package sshgate

import "testing"

// TestCapacityZeroIsNoLimit checks the one meaning of a zero limit: a
// gateway with Capacity 0 takes sessions past the config's default of
// 1000, and one with Capacity 2 takes two.
func TestCapacityZeroIsNoLimit(t *testing.T) {
	var unlimited Server
	for i := range 5000 {
		if !unlimited.Acquire() {
			t.Fatalf("Capacity 0 refused session %d", i+1)
		}
	}
	limited := Server{Capacity: 2}
	if !limited.Acquire() || !limited.Acquire() || limited.Acquire() {
		t.Fatal("Capacity 2 did not take exactly two sessions")
	}
	limited.Release()
	if !limited.Acquire() {
		t.Fatal("a released slot was not taken again")
	}
}
