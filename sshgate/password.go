package sshgate

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// defaultPasswordWait bounds the wait for a password-check slot.
const defaultPasswordWait = 2 * time.Second

func (s *Server) maxPasswordChecks() int {
	return orDefault(s.MaxPasswordChecks, runtime.NumCPU())
}

func (s *Server) passwordWait() time.Duration { return orDefault(s.PasswordWait, defaultPasswordWait) }

// passwordSlots is the semaphore of concurrent password hash checks.
func (s *Server) passwordSlots() chan struct{} {
	s.pwOnce.Do(func() { s.pwSlots = make(chan struct{}, s.maxPasswordChecks()) })
	return s.pwSlots
}

// checkPassword is the PasswordCallback. A password logs in as a user, so
// the login must be the user's name (ssh alice@gw APP). A check that finds
// no free slot within PasswordWait (or before ctx ends) fails as a wrong
// password does.
func (s *Server) checkPassword(ctx context.Context, meta gossh.ConnMetadata, password []byte, hs *handshake) (*gossh.Permissions, error) {
	login := meta.User()
	d := s.directory()
	pw, _ := d.(Passwords)
	if pw == nil {
		s.refused(meta, hs, reasonNoPasswords, "method", "password")
		return nil, errPasswordRefused
	}
	ok, busy := s.boundedCheck(ctx, func() bool { return pw.CheckPassword(login, string(password)) })
	if busy {
		s.logRepeated(ctx, slog.LevelWarn, "password checks busy", hostOf(meta.RemoteAddr()),
			"client", meta.RemoteAddr().String(), "outcome", "refused as a wrong password", "slots", s.maxPasswordChecks(), "waited", s.passwordWait())
	}
	if !ok || !d.IsUser(login) {
		s.refused(meta, hs, "wrong password or no such user", "method", "password")
		return nil, errPasswordRefused
	}
	return permissions(login, login, nil), nil
}

// boundedCheck runs check in one of MaxPasswordChecks slots. It reports
// busy, without running check, when no slot came free within PasswordWait
// or before ctx ended.
func (s *Server) boundedCheck(ctx context.Context, check func() bool) (ok, busy bool) {
	slots := s.passwordSlots()
	wait := time.NewTimer(s.passwordWait())
	defer wait.Stop()
	select {
	case slots <- struct{}{}:
	case <-wait.C:
		return false, true
	case <-ctx.Done():
		return false, true
	}
	defer func() { <-slots }()
	return check(), false
}
