package report

import (
	"io"
	"os"

	"golang.org/x/term"

	"github.com/canary-router/canary-router/controller/rollout"
)

// Palette colours words with ANSI SGR sequences when true. It is decided
// once per command (UseColor) and passed down, so the renderers stay pure
// functions of the status and tests pin both forms.
type Palette bool

// SGR colour codes, all two digits so a tabwriter column whose every cell
// is coloured stays aligned (the sequences count as width).
const (
	sgrRed    = "31"
	sgrGreen  = "32"
	sgrYellow = "33"
	sgrCyan   = "36"
)

func (p Palette) wrap(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// phase colours a rollout phase as Argo Rollouts' plugin does its
// statuses: green done, red rolled back, yellow stopped, cyan moving.
func (p Palette) phase(ph rollout.Phase) string {
	switch ph {
	case rollout.PhaseComplete:
		return p.wrap(sgrGreen, string(ph))
	case rollout.PhaseAborted, rollout.PhaseRollingBack:
		return p.wrap(sgrRed, string(ph))
	case rollout.PhasePaused:
		return p.wrap(sgrYellow, string(ph))
	}
	return p.wrap(sgrCyan, string(ph))
}

// verdict colours a gate's verdict.
func (p Palette) verdict(v rollout.Verdict) string {
	switch v {
	case rollout.VerdictPass:
		return p.wrap(sgrGreen, string(v))
	case rollout.VerdictFail:
		return p.wrap(sgrRed, string(v))
	}
	return p.wrap(sgrYellow, string(v))
}

// IsTerminal reports whether w is a terminal (a character device a person
// reads), not a pipe or a file.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// UseColor is the colour decision of kubectl plugins and most CLIs:
// colours only on a terminal, never with --no-color, with NO_COLOR set
// (https://no-color.org) or on a dumb terminal.
func UseColor(w io.Writer, noColor bool, getenv func(string) string) Palette {
	if noColor || getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	return Palette(IsTerminal(w))
}
