package layout

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	fence    = regexp.MustCompile("(?s)```.*?```")
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading  = regexp.MustCompile(`(?m)^#+ (.*)$`)
	notAlnum = regexp.MustCompile(`[^a-z0-9 _-]`)
)

// TestDocsLinks: every relative link of README.md, docs/ and deploy/'s
// pages names a file in the repository, and an anchor names a heading of
// that page; no page cites a file outside the repository.
func TestDocsLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	pages := []string{filepath.Join(root, "README.md")}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	pages = append(pages, docs...)
	_ = filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return nil
	})
	if len(docs) < 10 {
		t.Fatalf("found %d pages in docs/; is the root wrong?", len(docs))
	}
	links := 0
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.Contains(text, "DESIGN section") || strings.Contains(text, "../shared/") {
			t.Errorf("%s cites a file outside the repository", page)
		}
		for _, m := range mdLink.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
			url := m[1]
			if strings.Contains(url, "://") || strings.HasPrefix(url, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(url, "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), path)
			}
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links to %s, which does not exist", page, url)
				continue
			}
			if anchor != "" && strings.HasSuffix(target, ".md") && !hasAnchor(t, target, anchor) {
				t.Errorf("%s links to %s: no such heading", page, url)
			}
		}
	}
	if links < 50 {
		t.Errorf("checked %d links; the pages hold more: is the link pattern broken?", links)
	}
}

// hasAnchor says whether a Markdown page has a heading whose anchor, as
// the forge makes it, is anchor.
func hasAnchor(t *testing.T, page, anchor string) bool {
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heading.FindAllStringSubmatch(string(b), -1) {
		a := notAlnum.ReplaceAllString(strings.ToLower(strings.TrimSpace(h[1])), "")
		if strings.ReplaceAll(a, " ", "-") == anchor {
			return true
		}
	}
	return false
}
