package contracts

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// The fast checker answers one question — does this value satisfy the
// schema? — without building errors, on a mirror of the compiled schema
// made once at construction. It decides only when it is sure it agrees
// with the library: a value of a type it does not handle, a schema
// keyword it does not implement, or a long chain of in-place references
// leaves it undecided. Schema.validate trusts a "valid" answer and asks
// the library otherwise, so the library alone produces every violation
// report; FuzzContractValidate checks that the two always agree.

// maxInplaceDepth bounds chains of in-place applicators ($ref, allOf,
// anyOf, ...) that do not descend into the value. Deeper chains, including
// reference loops, are left to the library, which detects loops.
const maxInplaceDepth = 64

type typeMask uint8

const (
	tNull typeMask = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeBits = map[string]typeMask{
	"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger,
	"string": tString, "array": tArray, "object": tObject,
}

// bound is a numeric limit: exact, and as the nearest float64.
type bound struct {
	rat   *big.Rat
	f     float64
	exact bool // f is exactly rat
}

func newBound(r *big.Rat) *bound {
	if r == nil {
		return nil
	}
	f, exact := r.Float64()
	return &bound{rat: r, f: f, exact: exact}
}

type patternNode struct {
	re   *regexp.Regexp
	node *node
}

// node mirrors one *jsonschema.Schema.
type node struct {
	always   *bool
	types    typeMask
	constant []any
	enum     []any
	format   func(any) bool
	ref      *node
	not      *node
	allOf    []*node
	anyOf    []*node
	oneOf    []*node
	ifN      *node
	thenN    *node
	elseN    *node

	minProps, maxProps int
	required           []string
	props              map[string]*node
	propNames          *node
	patternProps       []patternNode
	addlPropsBool      *bool
	addlProps          *node
	depRequired        map[string][]string
	depSchemas         map[string]*node
	depRequiredLegacy  map[string][]string
	depSchemasLegacy   map[string]*node

	minItems, maxItems int
	unique             bool
	itemsOne           *node
	itemsTuple         []*node
	itemsTupleSet      bool
	addlItemsBool      *bool
	addlItems          *node
	prefixItems        []*node
	items2020          *node
	contains           *node
	minContains        int
	maxContains        int

	minLen, maxLen int
	pattern        *regexp.Regexp

	min, exMin, max, exMax *bound
	multipleOf             *big.Rat
}

// buildFast mirrors s, or returns nil when s (or any schema it reaches)
// uses a feature the fast checker does not implement.
func buildFast(s *jsonschema.Schema) *node {
	b := fastBuilder{seen: map[*jsonschema.Schema]*node{}}
	n := b.build(s)
	if b.unsupported || b.inplaceCycle() {
		return nil
	}
	return n
}

// inplaceCycle reports whether some schema reaches itself through in-place
// applicators only. The library reports such a loop as an error when it
// walks it, and it walks every branch of anyOf where the fast checker stops
// at the first match, so these schemas are left to the library.
func (b *fastBuilder) inplaceCycle() bool {
	const (
		unvisited = iota
		active
		done
	)
	state := make(map[*node]int, len(b.seen))
	var visit func(*node) bool
	visit = func(n *node) bool {
		if n == nil {
			return false
		}
		switch state[n] {
		case active:
			return true
		case done:
			return false
		}
		state[n] = active
		for _, next := range n.inplaceEdges() {
			if visit(next) {
				return true
			}
		}
		state[n] = done
		return false
	}
	for _, n := range b.seen {
		if visit(n) {
			return true
		}
	}
	return false
}

// inplaceEdges lists the schemas applied to the same value as n.
func (n *node) inplaceEdges() []*node {
	edges := []*node{n.ref, n.not, n.ifN, n.thenN, n.elseN}
	edges = append(edges, n.allOf...)
	edges = append(edges, n.anyOf...)
	edges = append(edges, n.oneOf...)
	for _, d := range n.depSchemas {
		edges = append(edges, d)
	}
	for _, d := range n.depSchemasLegacy {
		edges = append(edges, d)
	}
	return edges
}

type fastBuilder struct {
	seen        map[*jsonschema.Schema]*node
	unsupported bool
}

func (b *fastBuilder) build(s *jsonschema.Schema) *node {
	if s == nil || b.unsupported {
		return nil
	}
	if n, ok := b.seen[s]; ok {
		return n
	}
	n := &node{}
	b.seen[s] = n
	if s.RecursiveRef != nil || s.DynamicRef != nil || s.UnevaluatedProperties != nil ||
		s.UnevaluatedItems != nil || s.ContentEncoding != "" || s.ContentMediaType != "" ||
		s.ContentSchema != nil || len(s.Extensions) > 0 || s.RegexProperties {
		b.unsupported = true
		return nil
	}
	n.always = s.Always
	for _, t := range s.Types {
		bit, ok := typeBits[t]
		if !ok {
			b.unsupported = true
			return nil
		}
		n.types |= bit
	}
	n.constant = s.Constant
	n.enum = s.Enum
	if s.Format != "" {
		n.format = jsonschema.Formats[s.Format]
	}
	n.ref = b.build(s.Ref)
	n.not = b.build(s.Not)
	n.allOf = b.list(s.AllOf)
	n.anyOf = b.list(s.AnyOf)
	n.oneOf = b.list(s.OneOf)
	n.ifN, n.thenN, n.elseN = b.build(s.If), b.build(s.Then), b.build(s.Else)

	n.minProps, n.maxProps = s.MinProperties, s.MaxProperties
	n.required = s.Required
	if len(s.Properties) > 0 {
		n.props = make(map[string]*node, len(s.Properties))
		for k, ps := range s.Properties {
			n.props[k] = b.build(ps)
		}
	}
	n.propNames = b.build(s.PropertyNames)
	for re, ps := range s.PatternProperties {
		n.patternProps = append(n.patternProps, patternNode{re: re, node: b.build(ps)})
	}
	switch ap := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		n.addlPropsBool = &ap
	case *jsonschema.Schema:
		n.addlProps = b.build(ap)
	default:
		b.unsupported = true
	}
	for k, dv := range s.Dependencies {
		switch dv := dv.(type) {
		case *jsonschema.Schema:
			if n.depSchemasLegacy == nil {
				n.depSchemasLegacy = map[string]*node{}
			}
			n.depSchemasLegacy[k] = b.build(dv)
		case []string:
			if n.depRequiredLegacy == nil {
				n.depRequiredLegacy = map[string][]string{}
			}
			n.depRequiredLegacy[k] = dv
		default:
			b.unsupported = true
		}
	}
	n.depRequired = s.DependentRequired
	if len(s.DependentSchemas) > 0 {
		n.depSchemas = make(map[string]*node, len(s.DependentSchemas))
		for k, ds := range s.DependentSchemas {
			n.depSchemas[k] = b.build(ds)
		}
	}

	n.minItems, n.maxItems = s.MinItems, s.MaxItems
	n.unique = s.UniqueItems
	switch it := s.Items.(type) {
	case nil:
	case *jsonschema.Schema:
		n.itemsOne = b.build(it)
	case []*jsonschema.Schema:
		n.itemsTuple = b.list(it)
		n.itemsTupleSet = true
	default:
		b.unsupported = true
	}
	switch ai := s.AdditionalItems.(type) {
	case nil:
	case bool:
		n.addlItemsBool = &ai
	case *jsonschema.Schema:
		n.addlItems = b.build(ai)
	default:
		b.unsupported = true
	}
	n.prefixItems = b.list(s.PrefixItems)
	n.items2020 = b.build(s.Items2020)
	n.contains = b.build(s.Contains)
	n.minContains, n.maxContains = s.MinContains, s.MaxContains

	n.minLen, n.maxLen = s.MinLength, s.MaxLength
	n.pattern = s.Pattern

	n.min, n.exMin = newBound(s.Minimum), newBound(s.ExclusiveMinimum)
	n.max, n.exMax = newBound(s.Maximum), newBound(s.ExclusiveMaximum)
	n.multipleOf = s.MultipleOf
	return n
}

func (b *fastBuilder) list(ss []*jsonschema.Schema) []*node {
	if len(ss) == 0 {
		return nil
	}
	out := make([]*node, len(ss))
	for i, s := range ss {
		out[i] = b.build(s)
	}
	return out
}

// fastRun carries one check's state.
type fastRun struct {
	undecided bool
	inplace   int
}

// fastValid reports whether v satisfies n, and whether the checker could
// decide.
func fastValid(n *node, v any) (valid, decided bool) {
	var r fastRun
	valid = r.valid(n, v)
	return valid, !r.undecided
}

// kind classifies v as the library does, normalising numbers to float64;
// ok is false for values the fast checker leaves to the library.
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

// inplace runs an applicator that checks v itself (not a child).
func (r *fastRun) inplaceValid(n *node, v any) bool {
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

// child checks a value nested in v, which resets the in-place chain.
func (r *fastRun) child(n *node, v any) bool {
	saved := r.inplace
	r.inplace = 0
	ok := r.valid(n, v)
	r.inplace = saved
	return ok
}

func (r *fastRun) valid(n *node, v any) bool {
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

func (r *fastRun) object(n *node, m map[string]any) bool {
	if (n.minProps != -1 && len(m) < n.minProps) || (n.maxProps != -1 && len(m) > n.maxProps) {
		return false
	}
	for _, name := range n.required {
		if _, ok := m[name]; !ok {
			return false
		}
	}
	checkAddl := n.addlPropsBool != nil || n.addlProps != nil
	if len(n.props) <= len(m) || checkAddl {
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

func (r *fastRun) array(n *node, a []any) bool {
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

func (r *fastRun) number(n *node, f float64) bool {
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
func (r *fastRun) cmp(f float64, b *bound) int {
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
func (r *fastRun) rat(v any) *big.Rat {
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
func (r *fastRun) equal(a, b any) bool {
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

func (r *fastRun) undecide() bool {
	r.undecided = true
	return false
}

func (r *fastRun) ratOrZero(v any) *big.Rat {
	if x := r.rat(v); x != nil {
		return x
	}
	return new(big.Rat)
}
