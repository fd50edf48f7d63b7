package bus

// Header is multi-valued message metadata. Unlike net/http.Header, keys are
// case-preserving: "X-Trace" and "x-trace" are different keys, exactly as
// NATS carries them, so a header round-trips byte for byte.
type Header map[string][]string

// Add appends value to the values of key.
func (h Header) Add(key, value string) {
	h[key] = append(h[key], value)
}

// Set replaces the values of key with value.
func (h Header) Set(key, value string) {
	h[key] = []string{value}
}

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Values returns every value of key.
func (h Header) Values(key string) []string {
	return h[key]
}

// Del removes key.
func (h Header) Del(key string) {
	delete(h, key)
}

// Clone returns a deep copy of h; the clone of nil is nil.
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	c := make(Header, len(h))
	for k, vs := range h {
		c[k] = append([]string(nil), vs...)
	}
	return c
}
