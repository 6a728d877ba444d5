package transport

import "sync"

// Slots counts what each key holds against a limit: the connections of a
// source address, the sessions of a user. A key is in the map only while
// it holds a slot, so the map is bounded by the slots taken. The zero
// value is ready to use.
type Slots struct {
	mu sync.Mutex     // guards m
	m  map[string]int // slots held, by key
}

// Take takes one of key's limit slots; false if all are taken.
func (s *Slots) Take(key string, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]int)
	}
	if s.m[key] >= limit {
		return false
	}
	s.m[key]++
	return true
}

// Give gives back one of key's slots.
func (s *Slots) Give(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m[key]--; s.m[key] <= 0 {
		delete(s.m, key)
	}
}

// Total is the number of slots held by every key.
func (s *Slots) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.m {
		n += c
	}
	return n
}
