// Command kubeschema writes the JSON schemas kubeconform reads, one file per
// kind, from Kubernetes OpenAPI documents and CustomResourceDefinitions that
// ship inside Go modules, so the chart is validated without a network.
//
//	kubeschema -out DIR FILE...
//
// Each FILE is a Swagger 2.0 document, an OpenAPI 3 document or a
// CustomResourceDefinition (YAML or JSON). Later files win over earlier ones
// for a definition of the same name, so a newer group document can refine an
// older full one. The schemas are standalone (every $ref inlined) and strict
// (an object with properties admits no other), as kubeconform -strict expects;
// files are named {{ .ResourceKind }}{{ .KindSuffix }}.json.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	out := flag.String("out", "", "folder to write the schemas to")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kubeschema -out DIR FILE...")
		os.Exit(2)
	}
	n, err := run(*out, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema: "+err.Error())
		os.Exit(1)
	}
	fmt.Printf("kubeschema: %d schemas in %s\n", n, *out)
}

type gvk struct{ Group, Version, Kind string }

// FileName is where kubeconform's {{ .ResourceKind }}{{ .KindSuffix }} looks.
func (k gvk) FileName() string {
	s := strings.ToLower(k.Kind)
	if k.Group != "" {
		s += "-" + strings.ToLower(strings.Split(k.Group, ".")[0])
	}
	return s + "-" + strings.ToLower(k.Version) + ".json"
}

type set struct {
	defs  map[string]any // by definition name
	kinds map[gvk]any    // a schema, or the name of a definition
}

func run(out string, files []string) (int, error) {
	s := set{defs: map[string]any{}, kinds: map[gvk]any{}}
	for _, f := range files {
		if err := s.load(f); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
	}
	if len(s.kinds) == 0 {
		return 0, errors.New("no kinds found")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	keys := make([]gvk, 0, len(s.kinds))
	for k := range s.kinds {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].FileName() < keys[j].FileName() })
	for _, k := range keys {
		var sch any
		if name, ok := s.kinds[k].(string); ok {
			sch = s.expand(map[string]any{"$ref": name}, nil)
		} else {
			sch = s.expand(s.kinds[k], nil)
		}
		b, err := json.Marshal(sch)
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(out, k.FileName()), b, 0o644); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func (s set) load(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	switch {
	case doc["kind"] == "CustomResourceDefinition":
		return s.loadCRD(doc)
	case doc["definitions"] != nil:
		return s.loadDefs(asMap(doc["definitions"]))
	case asMap(doc["components"])["schemas"] != nil:
		return s.loadDefs(asMap(asMap(doc["components"])["schemas"]))
	}
	return errors.New("neither an OpenAPI document nor a CustomResourceDefinition")
}

func (s set) loadDefs(defs map[string]any) error {
	if len(defs) == 0 {
		return errors.New("no definitions")
	}
	for name, d := range defs {
		s.defs[name] = d
		for _, x := range asSlice(asMap(d)["x-kubernetes-group-version-kind"]) {
			m := asMap(x)
			k := gvk{str(m["group"]), str(m["version"]), str(m["kind"])}
			if k.Kind != "" && k.Version != "" {
				s.kinds[k] = name
			}
		}
	}
	return nil
}

func (s set) loadCRD(doc map[string]any) error {
	spec := asMap(doc["spec"])
	group, kind := str(spec["group"]), str(asMap(spec["names"])["kind"])
	for _, v := range asSlice(spec["versions"]) {
		vm := asMap(v)
		sch := asMap(asMap(vm["schema"])["openAPIV3Schema"])
		if len(sch) == 0 {
			return fmt.Errorf("version %v has no openAPIV3Schema", vm["name"])
		}
		s.kinds[gvk{group, str(vm["name"]), kind}] = sch
	}
	return nil
}

// expand inlines references and applies kubeconform's conventions. seen
// holds the definitions being expanded, to cut recursive types (such as
// JSONSchemaProps) to "anything".
func (s set) expand(node any, seen []string) any {
	switch v := node.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = s.expand(x, seen)
		}
		return out
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name := ref[strings.LastIndex(ref, "/")+1:]
			for _, x := range seen {
				if x == name {
					return map[string]any{}
				}
			}
			if name == "io.k8s.apimachinery.pkg.api.resource.Quantity" {
				// Swagger 2.0 says string, but the API server takes numbers too.
				return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
			}
			d, ok := s.defs[name]
			if !ok {
				return map[string]any{}
			}
			return s.expand(d, append(seen, name))
		}
		out := map[string]any{}
		for k, x := range v {
			switch {
			case k == "description" || strings.HasPrefix(k, "x-") || k == "format" && x == "int-or-string":
				// Documentation and extensions only; they do not validate.
			case k == "properties":
				props := map[string]any{}
				for p, ps := range asMap(x) {
					props[p] = s.expand(ps, seen)
				}
				out[k] = props
			default:
				out[k] = s.expand(x, seen)
			}
		}
		if v["x-kubernetes-int-or-string"] == true || v["format"] == "int-or-string" {
			delete(out, "type")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if _, ok := out["properties"]; ok && v["additionalProperties"] == nil && v["x-kubernetes-preserve-unknown-fields"] != true {
			out["additionalProperties"] = false
		}
		nullOptional(out)
		return out
	}
	return node
}

// nullOptional lets optional properties be null, as the API server does.
func nullOptional(sch map[string]any) {
	req := map[string]bool{}
	for _, r := range asSlice(sch["required"]) {
		req[str(r)] = true
	}
	for name, p := range asMap(sch["properties"]) {
		pm := asMap(p)
		if t, ok := pm["type"].(string); ok && !req[name] {
			pm["type"] = []any{t, "null"}
		}
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
