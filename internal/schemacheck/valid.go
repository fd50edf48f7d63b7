package schemacheck

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"
)

// run carries one check's state.
type run struct {
	undecided bool
	inplace   int
}

// Valid reports whether v satisfies the schema, and whether the checker
// could decide. When decided is true, valid is the answer the jsonschema
// library gives for the same value; when it is false, valid means nothing
// and the library must be asked.
//
// v is a value as encoding/json decodes into any: map[string]any, []any,
// string, float64, bool or nil, with int, int8, int32, int64, uint8 and
// uint32 accepted as numbers. Any other value the check meets (a
// json.Number, a []string, a NaN, an int64 beyond 2^53) leaves it
// undecided.
func (c *Checker) Valid(v any) (valid, decided bool) {
	if c == nil {
		return false, false
	}
	var r run
	valid = r.valid(c.root, v)
	return valid, !r.undecided
}

// kind classifies v as the library does, normalising numbers to float64;
// ok is false for values the checker leaves to the library.
func kind(v any) (k typeMask, f float64, ok bool) {
	switch x := v.(type) {
	case nil:
		return tNull, 0, true
	case bool:
		return tBoolean, 0, true
	case string:
		return tString, 0, true
	case map[string]any:
		return tObject, 0, true
	case []any:
		return tArray, 0, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, 0, false
		}
		return tNumber, x, true
	case int:
		return intKind(int64(x))
	case int64:
		return intKind(x)
	case int32:
		return tNumber, float64(x), true
	case int8:
		return tNumber, float64(x), true
	case uint8:
		return tNumber, float64(x), true
	case uint32:
		return tNumber, float64(x), true
	}
	return 0, 0, false
}

// intKind accepts integers a float64 holds exactly; their shortest decimal
// form, which the library compares, is then the integer itself.
func intKind(n int64) (typeMask, float64, bool) {
	const exact = 1 << 53
	if n > exact || n < -exact {
		return 0, 0, false
	}
	return tNumber, float64(n), true
}

// inplaceValid runs an applicator that checks v itself (not a child).
func (r *run) inplaceValid(n *node, v any) bool {
	r.inplace++
	if r.inplace > maxInplaceDepth {
		r.undecided = true
		r.inplace--
		return false
	}
	ok := r.valid(n, v)
	r.inplace--
	return ok
}

// child checks a value nested in the current one, which resets the
// in-place chain.
func (r *run) child(n *node, v any) bool {
	saved := r.inplace
	r.inplace = 0
	ok := r.valid(n, v)
	r.inplace = saved
	return ok
}

func (r *run) valid(n *node, v any) bool {
	if r.undecided {
		return false
	}
	if n.always != nil {
		return *n.always
	}
	k, f, ok := kind(v)
	if !ok {
		r.undecided = true
		return false
	}
	if n.types != 0 && n.types&k == 0 {
		if !(k == tNumber && n.types&tInteger != 0 && f == math.Trunc(f)) {
			return false
		}
	}
	if len(n.constant) > 0 && !r.equal(v, n.constant[0]) {
		return false
	}
	if len(n.enum) > 0 {
		found := false
		for _, item := range n.enum {
			if r.equal(v, item) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if n.format != nil && !n.format(v) {
		return false
	}
	switch k {
	case tObject:
		if !r.object(n, v.(map[string]any)) {
			return false
		}
	case tArray:
		if !r.array(n, v.([]any)) {
			return false
		}
	case tString:
		s := v.(string)
		if n.minLen != -1 || n.maxLen != -1 {
			l := utf8.RuneCountInString(s)
			if (n.minLen != -1 && l < n.minLen) || (n.maxLen != -1 && l > n.maxLen) {
				return false
			}
		}
		if n.pattern != nil && !n.pattern.MatchString(s) {
			return false
		}
	case tNumber:
		if !r.number(n, f) {
			return false
		}
	}
	if n.ref != nil && !r.inplaceValid(n.ref, v) {
		return false
	}
	if n.not != nil && r.inplaceValid(n.not, v) {
		return false
	}
	for _, s := range n.allOf {
		if !r.inplaceValid(s, v) {
			return false
		}
	}
	if len(n.anyOf) > 0 {
		matched := false
		for _, s := range n.anyOf {
			if r.inplaceValid(s, v) {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	if len(n.oneOf) > 0 {
		matched := 0
		for _, s := range n.oneOf {
			if r.inplaceValid(s, v) {
				matched++
			}
		}
		if matched != 1 {
			return false
		}
	}
	if n.ifN != nil {
		if r.inplaceValid(n.ifN, v) {
			if n.thenN != nil && !r.inplaceValid(n.thenN, v) {
				return false
			}
		} else if n.elseN != nil && !r.inplaceValid(n.elseN, v) {
			return false
		}
	}
	return !r.undecided
}

func (r *run) object(n *node, m map[string]any) bool {
	if (n.minProps != -1 && len(m) < n.minProps) || (n.maxProps != -1 && len(m) > n.maxProps) {
		return false
	}
	for _, name := range n.required {
		if _, ok := m[name]; !ok {
			return false
		}
	}
	checkAddl := n.addlPropsBool != nil || n.addlProps != nil
	if len(n.patternProps) == 0 && !checkAddl {
		// Only declared properties are checked: look each up rather than
		// iterate the map, which costs more.
		for _, p := range n.propList {
			if pv, ok := m[p.name]; ok && !r.child(p.node, pv) {
				return false
			}
		}
	} else if len(n.props) <= len(m) || checkAddl {
		for name, pv := range m {
			ps, declared := n.props[name]
			if declared && !r.child(ps, pv) {
				return false
			}
			matched := false
			for _, pp := range n.patternProps {
				if pp.re.MatchString(name) {
					matched = true
					if !r.child(pp.node, pv) {
						return false
					}
				}
			}
			if !declared && !matched && checkAddl {
				if n.addlPropsBool != nil {
					if !*n.addlPropsBool {
						return false
					}
				} else if !r.child(n.addlProps, pv) {
					return false
				}
			}
		}
	} else {
		for name, ps := range n.props {
			if pv, ok := m[name]; ok && !r.child(ps, pv) {
				return false
			}
		}
		for name, pv := range m {
			for _, pp := range n.patternProps {
				if pp.re.MatchString(name) && !r.child(pp.node, pv) {
					return false
				}
			}
		}
	}
	if n.propNames != nil {
		for name := range m {
			if !r.child(n.propNames, name) {
				return false
			}
		}
	}
	if !requiredDeps(m, n.depRequiredLegacy) || !requiredDeps(m, n.depRequired) {
		return false
	}
	for name, ds := range n.depSchemasLegacy {
		if _, ok := m[name]; ok && !r.inplaceValid(ds, m) {
			return false
		}
	}
	for name, ds := range n.depSchemas {
		if _, ok := m[name]; ok && !r.inplaceValid(ds, m) {
			return false
		}
	}
	return true
}

func requiredDeps(m map[string]any, deps map[string][]string) bool {
	for name, needs := range deps {
		if _, ok := m[name]; !ok {
			continue
		}
		for _, need := range needs {
			if _, ok := m[need]; !ok {
				return false
			}
		}
	}
	return true
}

func (r *run) array(n *node, a []any) bool {
	if (n.minItems != -1 && len(a) < n.minItems) || (n.maxItems != -1 && len(a) > n.maxItems) {
		return false
	}
	if n.unique {
		for i := 1; i < len(a); i++ {
			for j := 0; j < i; j++ {
				if r.equal(a[i], a[j]) {
					return false
				}
			}
		}
	}
	if n.itemsOne != nil {
		for _, item := range a {
			if !r.child(n.itemsOne, item) {
				return false
			}
		}
	}
	if n.itemsTupleSet {
		for i, item := range a {
			switch {
			case i < len(n.itemsTuple):
				if !r.child(n.itemsTuple[i], item) {
					return false
				}
			case n.addlItems != nil:
				if !r.child(n.addlItems, item) {
					return false
				}
			}
		}
		if n.addlItemsBool != nil && !*n.addlItemsBool && len(a) > len(n.itemsTuple) {
			return false
		}
	}
	for i, item := range a {
		if i < len(n.prefixItems) {
			if !r.child(n.prefixItems[i], item) {
				return false
			}
		} else if n.items2020 != nil {
			if !r.child(n.items2020, item) {
				return false
			}
		} else {
			break
		}
	}
	if n.contains != nil && (n.minContains != -1 || n.maxContains != -1) {
		matched := 0
		for _, item := range a {
			if r.child(n.contains, item) {
				matched++
			}
		}
		if (n.minContains != -1 && matched < n.minContains) || (n.maxContains != -1 && matched > n.maxContains) {
			return false
		}
	}
	return true
}

func (r *run) number(n *node, f float64) bool {
	if n.min != nil && r.cmp(f, n.min) < 0 {
		return false
	}
	if n.exMin != nil && r.cmp(f, n.exMin) <= 0 {
		return false
	}
	if n.max != nil && r.cmp(f, n.max) > 0 {
		return false
	}
	if n.exMax != nil && r.cmp(f, n.exMax) >= 0 {
		return false
	}
	if n.multipleOf != nil {
		x := r.rat(f)
		if x == nil || !new(big.Rat).Quo(x, n.multipleOf).IsInt() {
			return false
		}
	}
	return true
}

// cmp compares f with b as the library does: the shortest decimal form of
// f against the exact bound. Rounding to nearest is monotonic, so when f
// and the bound's nearest float differ, their order is the exact order;
// only a tie needs exact arithmetic.
func (r *run) cmp(f float64, b *bound) int {
	switch {
	case f < b.f:
		return -1
	case f > b.f:
		return 1
	case b.exact && f == math.Trunc(f) && math.Abs(f) <= 1<<53:
		// An integer float64 of at most 2^53 is its own shortest form.
		return 0
	}
	x := r.rat(f)
	if x == nil {
		return 0
	}
	return x.Cmp(b.rat)
}

// rat is the exact value the library gives a number: its fmt.Sprint form.
func (r *run) rat(v any) *big.Rat {
	x, ok := new(big.Rat).SetString(fmt.Sprint(v))
	if !ok {
		r.undecided = true
		return nil
	}
	return x
}

// equal is the library's JSON equality: same type, numbers equal as
// exact decimals, arrays element-wise, objects key by key. b may come
// from the schema (numbers as json.Number).
func (r *run) equal(a, b any) bool {
	ka, fa, oka := kind(a)
	if _, isNum := b.(json.Number); isNum {
		if !oka || ka != tNumber {
			return !oka && r.undecide()
		}
		return r.rat(fa).Cmp(r.ratOrZero(b)) == 0 && !r.undecided
	}
	kb, fb, okb := kind(b)
	if !oka || !okb {
		r.undecided = true
		return false
	}
	if ka != kb {
		return false
	}
	switch ka {
	case tNull:
		return true
	case tBoolean:
		return a.(bool) == b.(bool)
	case tString:
		return a.(string) == b.(string)
	case tNumber:
		// Distinct float64s have distinct shortest decimal forms.
		return fa == fb
	case tArray:
		x, y := a.([]any), b.([]any)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !r.equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case tObject:
		x, y := a.(map[string]any), b.(map[string]any)
		if len(x) != len(y) {
			return false
		}
		for key, xv := range x {
			yv, ok := y[key]
			if !ok || !r.equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

func (r *run) undecide() bool {
	r.undecided = true
	return false
}

func (r *run) ratOrZero(v any) *big.Rat {
	if x := r.rat(v); x != nil {
		return x
	}
	return new(big.Rat)
}
