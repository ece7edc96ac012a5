package layout

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pkgInfo is one package of the router (not test/): its directory
// relative to the repository root and its non-test imports.
type pkgInfo struct {
	rel     string
	imports []string
}

// routerPackages walks the repository for the router's packages, skipping
// test/, testdata, hidden and underscore folders, and bin/.
func routerPackages(t *testing.T) []pkgInfo {
	t.Helper()
	root := repoRoot(t)
	var pkgs []pkgInfo
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if rel != "." && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_") || rel == "test" ||
			strings.HasPrefix(rel, "test/") || d.Name() == "testdata" || rel == "bin") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		pkgs = append(pkgs, pkgInfo{rel: rel, imports: pkg.Imports})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// repoRoot is the repository's root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}
