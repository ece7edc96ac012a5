// Package validate is `canary-router validate`: policy files (or the
// policy ConfigMap's manifest) checked offline with the router's own parser.
package validate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/canary-router/canary-router/cmd/canary-router/cmdutil"
	"github.com/canary-router/canary-router/policy"
)

// Options holds the flags of canary-router validate.
type Options struct {
	output string
}

// File is one file of the -o json|yaml document.
type File struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	// Errors are the policy's problems, one per field; a file that cannot
	// be read or parsed has one with an empty field.
	Errors []Problem `json:"errors,omitempty"`
}

// Problem is policy.FieldError with stable JSON names.
type Problem struct {
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Output is the -o json|yaml document of canary-router validate.
type Output struct {
	Files []File `json:"files"`
}

func (c *Options) Bind(fs *pflag.FlagSet) {
	cmdutil.BindOutput(fs, &c.output, cmdutil.OutputText, cmdutil.OutputJSON, cmdutil.OutputYAML)
}

func (c *Options) Check(files []string) error {
	if len(files) == 0 {
		return errors.New("no policy file given (usage: canary-router validate FILE...)")
	}
	return nil
}

// run checks policy files (a policy, or the policy ConfigMap's manifest)
// offline with the same parser and messages the
// router uses, so a CI pipeline can refuse a bad edit before it is
// applied. It exits 1 when any file is invalid, or when ctx ends (SIGTERM,
// Ctrl-C) before every file is checked.
func (c *Options) Run(ctx context.Context, files []string, stdout, stderr io.Writer) int {
	var out Output
	bad := 0
	for _, f := range files {
		r, ok := validateWithin(ctx, f)
		if !ok {
			fmt.Fprintf(stderr, "%s: interrupted (%v) before the file was checked\n", f, context.Cause(ctx))
			return cmdutil.ExitFailure
		}
		out.Files = append(out.Files, r)
		if !r.Valid {
			bad++
		}
		if c.output != cmdutil.OutputText {
			continue
		}
		if r.Valid {
			fmt.Fprintf(stdout, "%s: valid\n", f)
		}
		for _, fe := range r.Errors {
			if fe.Field == "" {
				fmt.Fprintf(stderr, "%s: %s\n", f, fe.Reason)
				continue
			}
			fmt.Fprintf(stderr, "%s: %s: %s\n", f, fe.Field, fe.Reason)
		}
	}
	if c.output != cmdutil.OutputText {
		if err := cmdutil.WriteDocument(stdout, c.output, out); err != nil {
			fmt.Fprintln(stderr, err)
			return cmdutil.ExitFailure
		}
	}
	if bad > 0 {
		return cmdutil.ExitFailure
	}
	return cmdutil.ExitOK
}

// validateWithin is validateOne, abandoned when ctx ends: reading a file
// can block (a FIFO, a hung network mount), and main traps SIGTERM into
// ctx, so a command that did not watch it would ignore the signal.
func validateWithin(ctx context.Context, file string) (File, bool) {
	done := make(chan File, 1)
	go func() { done <- validateOne(file) }()
	select {
	case r := <-done:
		return r, true
	case <-ctx.Done():
		return File{}, false
	}
}

// validateOne reads and parses one policy file.
func validateOne(file string) File {
	data, err := os.ReadFile(file)
	if err == nil {
		// A ConfigMap manifest is the file GitOps repositories hold.
		data, _, err = policy.Document(data)
	}
	if err == nil {
		_, err = policy.Parse(data)
	}
	if err == nil {
		return File{File: file, Valid: true}
	}
	var verr policy.ValidationError
	if !errors.As(err, &verr) {
		return File{File: file, Errors: []Problem{{Reason: err.Error()}}}
	}
	r := File{File: file}
	for _, fe := range verr {
		r.Errors = append(r.Errors, Problem{Field: fe.Field, Reason: fe.Reason})
	}
	return r
}
