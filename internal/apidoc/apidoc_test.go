// Package apidoc holds a test that every exported name of the public
// packages has a doc comment: what go doc shows an embedder.
package apidoc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// public are the public packages, relative to the module root. Every
// exported function, method, type, constant and variable of each needs a
// doc comment; with fields, so do the exported fields of its structs and
// the methods of its interfaces.
var public = []struct {
	dir    string
	fields bool
}{
	{"migrate", true},
	{"migrate/migratetest", true},
	{"imapcopy", true},
	{"dav", true},
	{"caldav", true},
	{"carddav", true},
	{"carbonio", true},
	{"carbonio/files", true},
	{"carbonio/carboniotest", true},
	{"secret", true},
	{"state", true},
	{"state/statetest", true},
	{"zxerrors", true},
	{"retry", true},
	{"termsafe", true},
	{"dashboard", true},
}

// undocumented returns "file:line name" for each exported name in dir's
// non-test Go files that has no doc comment: functions, methods of
// exported types, types, constants and variables (a documented group
// covers its members), and with withFields the fields and methods of
// exported structs and interfaces (a line comment counts).
func undocumented(t *testing.T, dir string, withFields bool) []string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	miss := func(pos token.Pos, name string) {
		p := fset.Position(pos)
		out = append(out, filepath.ToSlash(filepath.Join(dir, filepath.Base(p.Filename)))+":"+itoa(p.Line)+" "+name)
	}
	for _, pkg := range pkgs {
		if pkg.Name == "main" {
			continue
		}
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				switch d := d.(type) {
				case *ast.FuncDecl:
					if !d.Name.IsExported() {
						continue
					}
					name := d.Name.Name
					if d.Recv != nil {
						recv := recvType(d.Recv.List[0].Type)
						if !ast.IsExported(recv) {
							continue
						}
						name = recv + "." + name
					}
					if d.Doc == nil && !(d.Recv != nil && standard[d.Name.Name]) {
						miss(d.Pos(), name)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						switch s := s.(type) {
						case *ast.TypeSpec:
							if !s.Name.IsExported() {
								continue
							}
							if s.Doc == nil && s.Comment == nil && d.Doc == nil {
								miss(s.Pos(), s.Name.Name)
							}
							if withFields {
								doc := s.Doc
								if doc == nil {
									doc = d.Doc
								}
								fields(s, doc.Text(), fset, miss)
							}
						case *ast.ValueSpec:
							for _, n := range s.Names {
								if n.IsExported() && s.Doc == nil && s.Comment == nil && d.Doc == nil {
									miss(n.Pos(), n.Name)
								}
							}
						}
					}
				}
			}
		}
	}
	return out
}

// standard are methods of the standard library's small interfaces (error,
// fmt.Stringer, errors' Unwrap): their names say what they do, and the
// type's doc says what the value is.
var standard = map[string]bool{"Error": true, "Unwrap": true, "String": true}

// fields reports the undocumented exported fields of a struct type and
// methods of an interface type. A field without a comment of its own is
// documented by the comment of the field just above it when that comment
// names it ("Source and Destination are the collection hrefs"); an
// interface method also by the type's doc when it names it ("Acquire
// waits for a slot").
func fields(s *ast.TypeSpec, typeDoc string, fset *token.FileSet, miss func(token.Pos, string)) {
	var list *ast.FieldList
	switch t := s.Type.(type) {
	case *ast.StructType:
		list = t.Fields
	case *ast.InterfaceType:
		list = t.Methods
	default:
		return
	}
	_, iface := s.Type.(*ast.InterfaceType)
	group, groupEnd := "", -1 // the last doc comment and the line its field ends on
	for _, f := range list.List {
		line := fset.Position(f.Pos()).Line
		if f.Doc != nil {
			group, groupEnd = f.Doc.Text(), fset.Position(f.End()).Line
			continue
		}
		inGroup := line == groupEnd+1
		if inGroup {
			groupEnd = fset.Position(f.End()).Line
		}
		if f.Comment != nil {
			continue
		}
		for _, n := range f.Names {
			if n.IsExported() && !(inGroup && names(group, n.Name)) && !(iface && names(typeDoc, n.Name)) {
				miss(n.Pos(), s.Name.Name+"."+n.Name)
			}
		}
	}
}

// names reports whether the comment text names the identifier as a word.
func names(text, ident string) bool {
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return !(r == '_' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
	}) {
		if w == ident {
			return true
		}
	}
	return false
}

func recvType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvType(e.X)
	case *ast.IndexExpr:
		return recvType(e.X)
	case *ast.IndexListExpr:
		return recvType(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}

func TestExportedNamesDocumented(t *testing.T) {
	var all []string
	for _, p := range public {
		dir := filepath.Join("..", "..", filepath.FromSlash(p.dir))
		if _, err := os.Stat(dir); err != nil {
			t.Fatalf("public package %s: %v", p.dir, err)
		}
		all = append(all, undocumented(t, dir, p.fields)...)
	}
	sort.Strings(all)
	for _, m := range all {
		t.Errorf("%s has no doc comment", m)
	}
}
