package heddle

import (
	"errors"
	"fmt"
)

// Errors shared by every actor. Each has one meaning; an actor wraps it
// with the field, subject or name at fault. Test them with errors.Is.
var (
	// ErrConfig reports a Config (or option, rules document or spec) that
	// cannot work: the wrapping error names the field and what to do.
	ErrConfig = errors.New("heddle: invalid config")
	// ErrStarted is returned by a second call of an actor's Run: each
	// actor runs once; make a new one to run again.
	ErrStarted = errors.New("heddle: actor already started; an actor runs once, make a new one")
	// ErrWorkerType reports a worker type that is empty or cannot be used
	// as a subject token (white space, wildcards, empty tokens).
	// It wraps ErrConfig: a worker or call given such a type cannot work.
	ErrWorkerType = fmt.Errorf("%w: invalid worker type", ErrConfig)
	// ErrDeadLettered is matched by the error a caller gets for a task
	// the router dead-lettered: the router answers such a task with a
	// failed TaskResult whose Metadata[MetadataDeadLetterReason] names
	// the reason's kind (event.ReasonRateLimited, ...), so that the caller
	// returns at once instead of waiting out its timeout.
	ErrDeadLettered = errors.New("heddle: task dead-lettered")
	// ErrInvalidMessage is matched (errors.Is) by every *ValidationError:
	// a message that is not valid JSON, lacks a required field, or has a
	// field of the wrong type or an unknown enum value.
	ErrInvalidMessage = errors.New("heddle: invalid message")
	// ErrUnknownEnum is wrapped by ParseModelTier, ParsePriority,
	// ParseTaskStatus and the enums' UnmarshalJSON for a value outside
	// the allowed set.
	ErrUnknownEnum = errors.New("heddle: unknown enum value")
)
