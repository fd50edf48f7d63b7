// Package contracts checks values against JSON Schema contracts: the input
// and output schemas of a worker.
//
// A Contract is built from Go types (For, via github.com/invopop/jsonschema)
// or from JSON Schema documents (FromJSON, FromFiles), and compiled once
// with github.com/santhosh-tekuri/jsonschema/v5 (Draft 2020-12, "format"
// asserted). A schema that does not compile is an error when the Contract
// is built, never when a message is checked.
//
// Validation checks the whole value — nested objects, arrays, enums,
// patterns, bounds, $ref — and reports every violation with the JSON
// Pointer of the offending value:
//
//	contracts: input violates schema: /items/2/qty: expected integer, but got string
//
// The errors match ErrViolation (a value fails its schema) or ErrSchema (a
// schema is malformed) with errors.Is.
//
// Checking a valid value is the common case and is made cheap: each
// compiled schema is mirrored, once, for a checker (internal/schemacheck)
// that only answers "valid or not" and allocates almost nothing. When it
// says valid, that is the answer; otherwise (or for a value or keyword it
// leaves undecided) the jsonschema library validates and produces the
// violations. BenchmarkContractCheck measures the two paths side by side,
// and fuzz targets here and in internal/schemacheck check that they agree.
package contracts

import (
	"fmt"
)

// Contract pairs a worker's input and output schemas. A nil side accepts
// every value; so does a nil or zero Contract. A Contract is immutable and
// safe for concurrent use.
type Contract struct {
	input, output *Schema
}

// New returns a contract of the given schemas; either may be nil.
func New(input, output *Schema) *Contract {
	return &Contract{input: input, output: output}
}

// For returns the contract of a handler taking In and returning Out, with
// schemas generated from the two types (see SchemaFor).
func For[In, Out any]() (*Contract, error) {
	in, err := SchemaFor[In]()
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	out, err := SchemaFor[Out]()
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	return New(in, out), nil
}

// FromJSON compiles a contract from JSON Schema documents. An empty
// document leaves that side unchecked.
func FromJSON(input, output []byte) (*Contract, error) {
	var c Contract
	var err error
	if len(input) > 0 {
		if c.input, err = NewSchema(input); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
	}
	if len(output) > 0 {
		if c.output, err = NewSchema(output); err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
	}
	return &c, nil
}

// FromFiles compiles a contract from JSON Schema files. An empty path
// leaves that side unchecked.
func FromFiles(inputPath, outputPath string) (*Contract, error) {
	var c Contract
	var err error
	if inputPath != "" {
		if c.input, err = SchemaFromFile(inputPath); err != nil {
			return nil, fmt.Errorf("input %s: %w", inputPath, err)
		}
	}
	if outputPath != "" {
		if c.output, err = SchemaFromFile(outputPath); err != nil {
			return nil, fmt.Errorf("output %s: %w", outputPath, err)
		}
	}
	return &c, nil
}

// Input returns the input schema, nil when inputs are not checked.
func (c *Contract) Input() *Schema {
	if c == nil {
		return nil
	}
	return c.input
}

// Output returns the output schema, nil when outputs are not checked.
func (c *Contract) Output() *Schema {
	if c == nil {
		return nil
	}
	return c.output
}

// ValidateInput checks v against the input schema. v is read as
// Schema.Validate reads it; the error is a *ValidationError with Side
// "input".
func (c *Contract) ValidateInput(v any) error { return c.Input().validate("input", v) }

// ValidateOutput checks v against the output schema. The error is a
// *ValidationError with Side "output".
func (c *Contract) ValidateOutput(v any) error { return c.Output().validate("output", v) }
