package cmdutil

import "strings"

// Bar renders a share (0-1) as a text bar of width cells, as simulate and
// status print it.
func Bar(share float64, width int) string {
	n := int(share*float64(width) + 0.5)
	n = max(0, min(n, width))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
