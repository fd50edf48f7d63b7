package wire

import (
	"fmt"
	"strings"
	"time"
)

// Times are written as Python's datetime (and pydantic) writes them, so
// that Go and Python write the same instant with the same bytes: six
// fractional digits when there are microseconds, none on a whole second.
const (
	timeLayout       = "2006-01-02T15:04:05.000000Z07:00"
	timeLayoutSecond = "2006-01-02T15:04:05Z07:00"
)

// ParseTime reads a wire timestamp: an RFC 3339 date-time (any offset;
// "T" or a space between date and time; fractional seconds optional), or
// the same without offset, read as UTC, as a naive Python datetime is
// written. Every field has its full width. The result is in UTC,
// truncated to microseconds.
func ParseTime(s string) (time.Time, error) {
	canon, zoned, ok := canonicalTime(s)
	if !ok {
		return time.Time{}, fmt.Errorf("heddle: %q is not an RFC 3339 timestamp", s)
	}
	layout := "2006-01-02T15:04:05"
	if zoned {
		layout = time.RFC3339
	}
	t, err := time.Parse(layout, canon)
	if err != nil {
		return time.Time{}, fmt.Errorf("heddle: %q is not an RFC 3339 timestamp: %w", s, err)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// canonicalTime checks the shape of a timestamp strictly (time.Parse alone
// accepts one-digit hours and comma decimal separators) and returns it
// with an upper-case T and Z, saying whether it has an offset.
func canonicalTime(s string) (canon string, zoned, ok bool) {
	digits := func(from, to int) bool {
		for i := from; i < to; i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	// yyyy-mm-ddThh:mm:ss
	if len(s) < 19 || !digits(0, 4) || s[4] != '-' || !digits(5, 7) || s[7] != '-' || !digits(8, 10) ||
		(s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		!digits(11, 13) || s[13] != ':' || !digits(14, 16) || s[16] != ':' || !digits(17, 19) {
		return "", false, false
	}
	i := 19
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			return "", false, false
		}
		i = j
	}
	b := []byte(s)
	b[10] = 'T'
	switch rest := len(s) - i; {
	case rest == 0:
		return string(b), false, true
	case rest == 1 && (s[i] == 'Z' || s[i] == 'z'):
		b[i] = 'Z'
		return string(b), true, true
	case rest == 6 && (s[i] == '+' || s[i] == '-') && digits(i+1, i+3) && s[i+3] == ':' && digits(i+4, i+6):
		if s[i+1:i+3] > "23" || s[i+4:i+6] > "59" {
			return "", false, false
		}
		return string(b), true, true
	}
	return "", false, false
}

// AppendTime appends t as a JSON string in wire form.
func AppendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = AppendTimeText(b, t)
	return append(b, '"')
}

// AppendTimeText appends t in wire form: RFC 3339 in UTC with six
// fractional digits, or none on a whole second.
func AppendTimeText(b []byte, t time.Time) []byte {
	t = t.UTC().Truncate(time.Microsecond)
	if t.Nanosecond() == 0 {
		return t.AppendFormat(b, timeLayoutSecond)
	}
	return t.AppendFormat(b, timeLayout)
}

// EnumProblem is the text shared by enum errors: `"huge" is not one of
// local, standard, frontier`.
func EnumProblem[T ~string](s string, allowed []T) string {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return fmt.Sprintf("%q is not one of %s", s, strings.Join(names, ", "))
}

// ParseTimeFast reads b as ParseTime reads string(b), without copying it,
// for the timestamps it is sure of: every field in range, as time.Parse
// requires. ok false means only "not sure"; ParseTime then decides.
func ParseTimeFast(b []byte) (t time.Time, ok bool) {
	if len(b) < 19 {
		return t, false
	}
	num := func(from, to int) int {
		n := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if b[4] != '-' || b[7] != '-' || b[10] != 'T' && b[10] != 't' && b[10] != ' ' || b[13] != ':' || b[16] != ':' ||
		year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return t, false
	}
	i, nsec := 19, 0
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i+1 {
			return t, false
		}
		// The first nine digits count, as in time.Parse.
		scale := int(time.Second / 10)
		for k := i + 1; k < j && k < i+10; k++ {
			nsec += int(b[k]-'0') * scale
			scale /= 10
		}
		i = j
	}
	offset := 0
	switch rest := b[i:]; {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		hh, mm := num(i+1, i+3), num(i+4, i+6)
		if hh < 0 || hh > 23 || mm < 0 || mm > 59 {
			return t, false
		}
		if offset = (hh*60 + mm) * 60; rest[0] == '-' {
			offset = -offset
		}
	default:
		return t, false
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second).Truncate(time.Microsecond), true
}

// daysIn is the number of days of month in year (proleptic Gregorian).
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// FormatTime writes t as the wire does, and as Python's datetime writes
// an aware UTC time: RFC 3339 in UTC with six fractional digits.
func FormatTime(t time.Time) string { return string(AppendTimeText(nil, t)) }
