package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/canary-router/canary-router/webhook/policy"
)

// validate checks policy files offline with the same parser and messages
// the router uses, so a CI pipeline can refuse a bad edit before it is
// applied. It exits 1 when any file is invalid.
func validate(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: canary-router validate FILE...")
		return 2
	}
	bad := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err == nil {
			_, err = policy.Parse(data)
		}
		if err == nil {
			fmt.Fprintf(stdout, "%s: valid\n", f)
			continue
		}
		bad++
		var verr policy.ValidationError
		if errors.As(err, &verr) {
			for _, fe := range verr {
				fmt.Fprintf(stderr, "%s: %s\n", f, fe.Error())
			}
			continue
		}
		fmt.Fprintf(stderr, "%s: %v\n", f, err)
	}
	if bad > 0 {
		return 1
	}
	return 0
}
