package bus

import (
	"fmt"
	"strings"
)

// ValidatePublishSubject reports whether subject can be published to: one
// or more non-empty dot-separated tokens, no whitespace, no wildcards.
func ValidatePublishSubject(subject string) error {
	return validateSubject(subject, false)
}

// ValidateSubscribeSubject reports whether subject can be subscribed to:
// like a publish subject, but a token may be the wildcard "*" (exactly one
// token), and the last token may be ">" (one or more tokens).
func ValidateSubscribeSubject(subject string) error {
	return validateSubject(subject, true)
}

func validateSubject(subject string, wildcards bool) error {
	if subject == "" {
		return fmt.Errorf("%w: empty subject", ErrBadSubject)
	}
	start := 0
	for i := 0; i <= len(subject); i++ {
		if i < len(subject) && subject[i] != '.' {
			if isSpace(subject[i]) {
				return fmt.Errorf("%w: %q contains whitespace", ErrBadSubject, subject)
			}
			continue
		}
		tok := subject[start:i]
		switch {
		case tok == "":
			return fmt.Errorf("%w: %q has an empty token", ErrBadSubject, subject)
		case tok == "*" || tok == ">":
			if !wildcards {
				return fmt.Errorf("%w: %q: wildcards are not allowed in a publish subject", ErrBadSubject, subject)
			}
			if tok == ">" && i != len(subject) {
				return fmt.Errorf("%w: %q: '>' must be the last token", ErrBadSubject, subject)
			}
		}
		start = i + 1
	}
	return nil
}

// ValidateQueue reports whether name is a usable queue group name:
// non-empty, no whitespace.
func ValidateQueue(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrBadQueue)
	}
	for i := 0; i < len(name); i++ {
		if isSpace(name[i]) {
			return fmt.Errorf("%w: %q contains whitespace", ErrBadQueue, name)
		}
	}
	return nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// Match reports whether a publish subject matches a subscription pattern.
// Both are assumed valid: "*" matches exactly one token, a final ">"
// matches one or more tokens.
func Match(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		if pt == ">" {
			return subject != ""
		}
		st, srest, smore := strings.Cut(subject, ".")
		if pt != "*" && pt != st {
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

// HasWildcard reports whether a subscription subject contains a wildcard
// token.
func HasWildcard(subject string) bool {
	for _, tok := range strings.Split(subject, ".") {
		if tok == "*" || tok == ">" {
			return true
		}
	}
	return false
}
