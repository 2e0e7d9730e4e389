package broker

import (
	"context"
	"errors"
	"fmt"
)

// Class tells a front-end how to report a failure: whether the client
// should retry, or give up.
type Class int

const (
	// Transient failures (network errors, timeouts, upstream 5xx or 429)
	// may go away if the client retries.
	Transient Class = iota + 1
	// Fatal failures (revoked or malformed credentials, upstream 4xx, a
	// request the source cannot serve) will not go away by retrying.
	Fatal
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Fatal:
		return "fatal"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Error is the one error type of the token core. Its Code, when not zero,
// is a numeric code that protocols able to carry one (local_auth's
// error_code) pass on to the client.
type Error struct {
	Class Class
	Code  int
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// NewTransient marks err as transient.
func NewTransient(err error) error { return &Error{Class: Transient, Err: err} }

// NewFatal marks err as fatal.
func NewFatal(err error) error { return &Error{Class: Fatal, Err: err} }

// NewFatalCode marks err as fatal with a numeric code for the client.
func NewFatalCode(code int, err error) error { return &Error{Class: Fatal, Code: code, Err: err} }

// Transientf is fmt.Errorf for a transient error.
func Transientf(format string, args ...any) error { return NewTransient(fmt.Errorf(format, args...)) }

// Fatalf is fmt.Errorf for a fatal error.
func Fatalf(format string, args ...any) error { return NewFatal(fmt.Errorf(format, args...)) }

// ClassOf reports the class of err. Errors that are not (and do not wrap)
// an *Error are fatal: an unexplained failure should not make clients
// retry forever.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) && e.Class != 0 {
		return e.Class
	}
	return Fatal
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool { return err != nil && ClassOf(err) == Transient }

// CodeOf returns the numeric code carried by err (found with errors.As, so
// wrapping keeps it), or -1 when there is none, which is what local_auth
// sends for a fatal error without a code.
func CodeOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Code != 0 {
		return e.Code
	}
	return -1
}

// ErrUnknownAccount is returned (wrapped, fatal) for an account id the
// broker does not serve.
var ErrUnknownAccount = errors.New("unknown account")

// ErrNotSupported is wrapped by sources that cannot mint what was asked,
// e.g. ID tokens from a source without them.
var ErrNotSupported = errors.New("not supported by this credential")

// PublicReason says in a few words why err happened, in terms fit for a
// client on a protocol with no numeric error codes (devshell, the gsutil
// and firebase token endpoints). It never includes the error's own text,
// which may quote an upstream; the details belong in the broker's log.
func PublicReason(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out, try again"
	case errors.Is(err, ErrUnknownAccount):
		return "the account is not served"
	case errors.Is(err, ErrNotSupported):
		return "not supported by this credential"
	case IsTransient(err):
		return "temporary failure, try again"
	}
	return "the credential was refused, see the broker's log"
}
