package appd

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// keptFile mirrors a detached session's kept output (ring) in an
// anonymous file (memfd_create(2)) the keeper holds, so that it survives
// appd: an 8-byte little-endian count of the bytes written since the
// last reset, then a ring of keptOutput bytes where byte n of the stream
// sits at n mod keptOutput. The count is written after the bytes, so a
// reader never counts bytes that are not there.
type keptFile struct {
	f     *os.File
	total uint64
}

const keptHeader = 8

// newKeptFile creates an empty mirror.
func newKeptFile() (*keptFile, error) {
	fd, err := unix.MemfdCreate("switchyard-kept", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	k := &keptFile{f: os.NewFile(uintptr(fd), "kept")}
	if err := k.f.Truncate(keptHeader + keptOutput); err != nil {
		k.f.Close()
		return nil, fmt.Errorf("kept output file: %w", err)
	}
	return k, nil
}

// write appends p; the oldest bytes beyond keptOutput are overwritten.
// An error leaves the mirror short of p, which only matters if appd dies.
func (k *keptFile) write(p []byte) error {
	if len(p) > keptOutput {
		k.total += uint64(len(p) - keptOutput)
		p = p[len(p)-keptOutput:]
	}
	for len(p) > 0 {
		at := int(k.total % keptOutput)
		n := min(len(p), keptOutput-at)
		if _, err := k.f.WriteAt(p[:n], int64(keptHeader+at)); err != nil {
			return fmt.Errorf("kept output file: %w", err)
		}
		k.total += uint64(n)
		p = p[n:]
	}
	return k.setTotal(k.total)
}

// reset empties the mirror: what it held was delivered.
func (k *keptFile) reset() error {
	k.total = 0
	return k.setTotal(0)
}

func (k *keptFile) setTotal(n uint64) error {
	var b [keptHeader]byte
	binary.LittleEndian.PutUint64(b[:], n)
	if _, err := k.f.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("kept output file: %w", err)
	}
	return nil
}

// readKeptFile returns what a mirror holds, oldest byte first.
func readKeptFile(f *os.File) ([]byte, error) {
	var b [keptHeader]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return nil, fmt.Errorf("kept output file: %w", err)
	}
	total := binary.LittleEndian.Uint64(b[:])
	n := int(min(total, keptOutput))
	out := make([]byte, n)
	start := int((total - uint64(n)) % keptOutput)
	first := min(n, keptOutput-start)
	if _, err := f.ReadAt(out[:first], int64(keptHeader+start)); err != nil {
		return nil, fmt.Errorf("kept output file: %w", err)
	}
	if _, err := f.ReadAt(out[first:], keptHeader); err != nil && n > first {
		return nil, fmt.Errorf("kept output file: %w", err)
	}
	return out, nil
}
