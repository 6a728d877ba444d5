package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Defaults of a file sink.
const (
	DefaultMaxSize = 64 << 20 // bytes of the current file before it is rotated
	DefaultKeep    = 5        // rotated files kept besides the current one
)

// FileName is the audit file of node under the state directory.
func FileName(node string) string { return "audit-" + node + ".log" }

// Rotator is an append-only file that rotates by size: once a write would
// take it past MaxSize, PATH becomes PATH.1 (PATH.1 becomes PATH.2, and so
// on; the oldest beyond Keep is removed) and a new PATH is started. A
// line is never split across two files. Files are created 0600. Two
// processes may share PATH (a gateway and its successor during an
// upgrade in place): each write goes to the file PATH names then, and
// the size is the file's, not this process's count.
type Rotator struct {
	Path    string
	MaxSize int64 // DefaultMaxSize if zero
	Keep    int   // rotated files kept; 0 keeps none

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Write appends p, rotating first if p would not fit.
func (r *Rotator) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.current(); err != nil {
		return 0, err
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxSize() {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("audit write %s: %w", r.Path, err)
	}
	return n, nil
}

func (r *Rotator) maxSize() int64 {
	if r.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return r.MaxSize
}

// current makes r.f the file PATH names now, open for appending, and
// r.size its size: another process may have rotated it away.
func (r *Rotator) current() error {
	if r.f != nil {
		mine, err1 := r.f.Stat()
		named, err2 := os.Stat(r.Path)
		if err1 == nil && err2 == nil && os.SameFile(mine, named) {
			r.size = mine.Size()
			return nil
		}
		r.f.Close()
		r.f = nil
	}
	return r.open()
}

// open opens (or creates) the current file for appending.
func (r *Rotator) open() error {
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o700); err != nil {
		return fmt.Errorf("audit open %s: %w", r.Path, err)
	}
	f, err := os.OpenFile(r.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit open %s: %w", r.Path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit open %s: %w", r.Path, err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// rotate shifts the rotated files by one and starts a new current file.
func (r *Rotator) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("audit rotate %s: %w", r.Path, err)
	}
	r.f = nil
	os.Remove(rotated(r.Path, r.Keep+1)) // beyond Keep; usually absent
	if r.Keep <= 0 {
		os.Remove(r.Path)
	}
	for i := r.Keep - 1; i >= 1; i-- {
		os.Rename(rotated(r.Path, i), rotated(r.Path, i+1)) // a gap is fine
	}
	if r.Keep > 0 {
		if err := os.Rename(r.Path, rotated(r.Path, 1)); err != nil {
			return fmt.Errorf("audit rotate %s: %w", r.Path, err)
		}
	}
	return r.open()
}

// Close closes the current file.
func (r *Rotator) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// rotated is the name of the i-th rotated file of path.
func rotated(path string, i int) string { return fmt.Sprintf("%s.%d", path, i) }
