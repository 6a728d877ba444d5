package config

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime/debug"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// argon2FreeMemory is the argon2id memory (KiB) from which a check hands
// its buffer back to the OS at once: without it, concurrent checks of a
// 64 MiB hash leave the process holding hundreds of MiB until the next
// GC cycle decides to run.
const argon2FreeMemory = 8 << 10

// releaseArgon2 returns an argon2id check's memory to the OS when it was
// large (m >= 8 MiB).
func releaseArgon2(p argon2Params) {
	if p.memory >= argon2FreeMemory {
		debug.FreeOSMemory()
	}
}

// DummyHash returns a hash of a random password that costs as much to
// check as the costliest of hashes: argon2id with the parameters of the
// most expensive argon2id hash among them (memory × time, then threads),
// else bcrypt at the highest bcrypt cost among them (bcrypt.DefaultCost
// if none). A gateway checks it for unknown users and users without a
// password, so that they take as long as a real check. Malformed hashes
// are ignored. Computing it costs one hash of that kind: call it when a
// config loads, not per attempt.
func DummyHash(hashes []string) (string, error) {
	var pw [16]byte
	rand.Read(pw[:])
	if p, ok := costliestArgon2(hashes); ok {
		var salt [16]byte
		rand.Read(salt[:])
		key := argon2.IDKey(pw[:], salt[:], p.time, p.memory, p.threads, uint32(len(p.key)))
		releaseArgon2(p)
		return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.memory, p.time, p.threads,
			base64.RawStdEncoding.EncodeToString(salt[:]), base64.RawStdEncoding.EncodeToString(key)), nil
	}
	cost := bcrypt.DefaultCost
	for _, h := range hashes {
		if c, err := bcrypt.Cost([]byte(h)); err == nil && c > cost {
			cost = c
		}
	}
	h, err := bcrypt.GenerateFromPassword(pw[:], cost)
	if err != nil {
		return "", fmt.Errorf("config: dummy password hash: %w", err)
	}
	return string(h), nil
}

// costliestArgon2 returns the parameters of the most expensive argon2id
// hash among hashes.
func costliestArgon2(hashes []string) (argon2Params, bool) {
	var best argon2Params
	found := false
	for _, h := range hashes {
		if !strings.HasPrefix(h, "$argon2id$") {
			continue
		}
		p, err := parseArgon2id(h)
		if err != nil {
			continue
		}
		if !found || argon2Cost(p) > argon2Cost(best) || (argon2Cost(p) == argon2Cost(best) && p.threads > best.threads) {
			best, found = p, true
		}
	}
	return best, found
}

func argon2Cost(p argon2Params) uint64 { return uint64(p.memory) * uint64(p.time) }
