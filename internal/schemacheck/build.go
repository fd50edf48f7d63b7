package schemacheck

import (
	"math/big"
	"regexp"

	"github.com/santhosh-tekuri/jsonschema/v5"
)

// Checker answers whether a value satisfies one compiled schema. It is
// immutable and safe for concurrent use.
type Checker struct {
	root *node
}

// maxInplaceDepth bounds chains of in-place applicators ($ref, allOf,
// anyOf, ...) that do not descend into the value; deeper chains are left
// to the library. (Schemas with in-place loops are not mirrored at all.)
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

type propNode struct {
	name string
	node *node
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
	propList           []propNode // props as a list, for walking without a map iteration
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

// New mirrors the compiled schema s for a Checker. It returns nil when s,
// or any schema it reaches, uses a feature the checker does not implement,
// such as "$dynamicRef" or "$recursiveRef", "unevaluatedProperties" or
// "unevaluatedItems", the content keywords, a vocabulary extension, or a
// loop of in-place applicators. A nil Checker decides nothing.
func New(s *jsonschema.Schema) *Checker {
	if s == nil {
		return nil
	}
	b := builder{seen: map[*jsonschema.Schema]*node{}}
	n := b.build(s)
	if b.unsupported || b.inplaceCycle() {
		return nil
	}
	return &Checker{root: n}
}

// inplaceCycle reports whether some schema reaches itself through in-place
// applicators only. The library reports such a loop as an error when it
// walks it, and it walks every branch of anyOf where the checker stops
// at the first match, so these schemas are left to the library.
func (b *builder) inplaceCycle() bool {
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

type builder struct {
	seen        map[*jsonschema.Schema]*node
	unsupported bool
}

func (b *builder) build(s *jsonschema.Schema) *node {
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
		for k, pn := range n.props {
			n.propList = append(n.propList, propNode{name: k, node: pn})
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

func (b *builder) list(ss []*jsonschema.Schema) []*node {
	if len(ss) == 0 {
		return nil
	}
	out := make([]*node, len(ss))
	for i, s := range ss {
		out[i] = b.build(s)
	}
	return out
}
