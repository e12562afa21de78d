// gomodule-go: Go module lookups on a module proxy (the GOPROXY protocol,
// https://go.dev/ref/mod#goproxy-protocol), as three MCP tools: the functions
// of wit/world.wit. Each go:wasmexport function below is one WIT export,
// with its arguments and result lowered by hand (see cabi.go).

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

const defaultProxy = "https://proxy.golang.org"

// versionInfo is the JSON of /@latest and /@v/VERSION.info.
type versionInfo struct {
	Version string
	Time    string
}

// latest-version: func(module-path: string, proxy: option<string>) -> result<module-version, string>
//
//go:wasmexport latest-version
func exportLatestVersion(pathPtr, pathLen, proxySome, proxyPtr, proxyLen uint32) uint32 {
	module := liftString(pathPtr, pathLen)
	proxy, _ := liftOption(proxySome, proxyPtr, proxyLen)
	release()
	// result<module-version, string>: tag at 0, the record or the error at 4.
	const size = 20
	info, err := latest(module, proxy)
	if err != nil {
		return returnErr(err.Error(), size)
	}
	ret := alloc(size)
	storeString(ret+4, info.Version)
	storeString(ret+12, info.Time)
	return ret
}

// list-versions: func(module-path: string, proxy: option<string>) -> result<list<string>, string>
//
//go:wasmexport list-versions
func exportListVersions(pathPtr, pathLen, proxySome, proxyPtr, proxyLen uint32) uint32 {
	module := liftString(pathPtr, pathLen)
	proxy, _ := liftOption(proxySome, proxyPtr, proxyLen)
	release()
	const size = 12
	versions, err := listVersions(module, proxy)
	if err != nil {
		return returnErr(err.Error(), size)
	}
	ret := alloc(size)
	storeStrings(ret+4, versions)
	return ret
}

// module-info: func(module-path: string, version: option<string>, proxy: option<string>) -> result<module-info, string>
//
//go:wasmexport module-info
func exportModuleInfo(pathPtr, pathLen, versionSome, versionPtr, versionLen, proxySome, proxyPtr, proxyLen uint32) uint32 {
	module := liftString(pathPtr, pathLen)
	version, _ := liftOption(versionSome, versionPtr, versionLen)
	proxy, _ := liftOption(proxySome, proxyPtr, proxyLen)
	release()
	// The record's five fields (four strings and a list) from 4 on.
	const size = 44
	info, err := moduleInfo(module, version, proxy)
	if err != nil {
		return returnErr(err.Error(), size)
	}
	ret := alloc(size)
	storeString(ret+4, info.path)
	storeString(ret+12, info.version)
	storeString(ret+20, info.time)
	storeString(ret+28, info.goVersion)
	storeStrings(ret+36, info.requires)
	return ret
}

func latest(module, proxy string) (versionInfo, error) {
	var info versionInfo
	base, err := moduleURL(module, proxy)
	if err != nil {
		return info, err
	}
	body, err := fetch(base+"/@latest", module)
	var missing notFound
	if errors.As(err, &missing) {
		// @latest is optional in the protocol (a proxy made of files, such as
		// a module cache, has none): then, as the go command does, the
		// highest release in the list, else the highest pre-release.
		return latestListed(module, proxy, base, err)
	}
	if err != nil {
		return info, err
	}
	return decodeInfo(body, base+"/@latest")
}

func latestListed(module, proxy, base string, missing error) (versionInfo, error) {
	versions, err := listVersions(module, proxy)
	if err != nil || len(versions) == 0 {
		return versionInfo{}, missing
	}
	pick := versions[0]
	for _, v := range versions {
		if s := parseSemver(v); s.ok && s.pre == "" {
			pick = v
			break
		}
	}
	escaped, _ := escapePath(pick)
	body, err := fetch(base+"/@v/"+escaped+".info", module+"@"+pick)
	if err != nil {
		return versionInfo{}, err
	}
	return decodeInfo(body, base+"/@v/"+escaped+".info")
}

func decodeInfo(body []byte, url string) (versionInfo, error) {
	var info versionInfo
	if err := json.Unmarshal(body, &info); err != nil || info.Version == "" {
		return info, fmt.Errorf("%s: not a version info answer", url)
	}
	return info, nil
}

func listVersions(module, proxy string) ([]string, error) {
	base, err := moduleURL(module, proxy)
	if err != nil {
		return nil, err
	}
	body, err := fetch(base+"/@v/list", module)
	if err != nil {
		return nil, err
	}
	// Parsed once: with the garbage collector off (cabi.go), what a call
	// allocates stays allocated.
	versions := strings.Fields(string(body))
	parsed := make([]semver, len(versions))
	for i, v := range versions {
		parsed[i] = parseSemver(v)
	}
	order := make([]int, len(versions))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return compareSemver(parsed[order[i]], parsed[order[j]]) > 0 })
	sorted := make([]string, len(versions))
	for i, k := range order {
		sorted[i] = versions[k]
	}
	return sorted, nil
}

type modInfo struct {
	path, version, time, goVersion string
	requires                       []string
}

func moduleInfo(module, version, proxy string) (modInfo, error) {
	var out modInfo
	base, err := moduleURL(module, proxy)
	if err != nil {
		return out, err
	}
	var info versionInfo
	if version == "" {
		if info, err = latest(module, proxy); err != nil {
			return out, err
		}
	} else {
		escaped, err := escapePath(version)
		if err != nil {
			return out, fmt.Errorf("version %q: %v", version, err)
		}
		body, err := fetch(base+"/@v/"+escaped+".info", module+"@"+version)
		if err != nil {
			return out, err
		}
		if info, err = decodeInfo(body, base+"/@v/"+escaped+".info"); err != nil {
			return out, err
		}
	}
	escaped, _ := escapePath(info.Version)
	gomod, err := fetch(base+"/@v/"+escaped+".mod", module+"@"+info.Version)
	if err != nil {
		return out, err
	}
	out = modInfo{path: module, version: info.Version, time: info.Time, requires: []string{}}
	out.goVersion, out.requires = parseGoMod(string(gomod))
	return out, nil
}

// fetch GETs url and returns the body of a 200 answer; what names the
// module (and version) for messages.
func fetch(url, what string) ([]byte, error) {
	status, body, err := httpGet(url)
	if err != nil {
		return nil, err
	}
	switch {
	case status == 200:
		return body, nil
	case status == 404 || status == 410:
		// The proxy's own words say why (e.g. "not found: ... unknown revision").
		return nil, notFound{fmt.Sprintf("%s: not found on the proxy%s", what, reason(body))}
	default:
		return nil, fmt.Errorf("%s: HTTP %d%s", url, status, reason(body))
	}
}

// notFound is a 404 or 410 answer: the proxy does not have it.
type notFound struct{ message string }

func (e notFound) Error() string { return e.message }

// moduleURL is the proxy's base URL for a module: PROXY/ESCAPED-PATH.
func moduleURL(module, proxy string) (string, error) {
	if proxy == "" {
		proxy = defaultProxy
	}
	if !strings.HasPrefix(proxy, "https://") && !strings.HasPrefix(proxy, "http://") {
		return "", fmt.Errorf("proxy %q: not an http or https URL", proxy)
	}
	if err := checkModulePath(module); err != nil {
		return "", err
	}
	escaped, err := escapePath(module)
	if err != nil {
		return "", fmt.Errorf("module path %q: %v", module, err)
	}
	return strings.TrimSuffix(proxy, "/") + "/" + escaped, nil
}

func checkModulePath(module string) error {
	if module == "" {
		return fmt.Errorf("no module path given (e.g. golang.org/x/text)")
	}
	first, _, _ := strings.Cut(module, "/")
	if strings.Contains(module, "://") || !strings.Contains(first, ".") {
		return fmt.Errorf("module path %q: expected a path such as golang.org/x/text or github.com/OWNER/REPO", module)
	}
	for _, elem := range strings.Split(module, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("module path %q: empty, . or .. element", module)
		}
	}
	return nil
}

// escapePath is the proxy protocol's case encoding: each upper-case letter
// becomes '!' and its lower case (the proxy serves case-insensitive file
// systems), e.g. github.com/BurntSushi/toml -> github.com/!burnt!sushi/toml.
func escapePath(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '!' || r < 0x21 || r > 0x7e || strings.ContainsRune(`"'*<>?`+"`|\\:%#", r):
			return "", fmt.Errorf("character %q is not allowed", r)
		case 'A' <= r && r <= 'Z':
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// parseGoMod reads the go directive and the requirements of a go.mod file.
func parseGoMod(text string) (string, []string) {
	goVersion, requires := "", []string{}
	inBlock := false
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "//")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case inBlock && fields[0] == ")":
			inBlock = false
		case inBlock && len(fields) >= 2:
			requires = append(requires, fields[0]+" "+fields[1])
		case fields[0] == "go" && len(fields) == 2:
			goVersion = fields[1]
		case fields[0] == "require" && len(fields) == 2 && fields[1] == "(":
			inBlock = true
		case fields[0] == "require" && len(fields) >= 3:
			requires = append(requires, fields[1]+" "+fields[2])
		}
	}
	return goVersion, requires
}

// compareSemver orders vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] versions
// (a release above its pre-releases); anything else sorts below them all.
func compareSemver(a, b semver) int {
	if !a.ok || !b.ok {
		return boolInt(a.ok) - boolInt(b.ok)
	}
	for i := 0; i < 3; i++ {
		if a.nums[i] != b.nums[i] {
			return sign(a.nums[i] - b.nums[i])
		}
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	}
	return comparePrerelease(a.pre, b.pre)
}

type semver struct {
	ok   bool
	nums [3]int
	pre  string
}

func parseSemver(v string) semver {
	var s semver
	if !strings.HasPrefix(v, "v") {
		return s
	}
	v, _, _ = strings.Cut(v[1:], "+")
	v, s.pre, _ = strings.Cut(v, "-")
	for i := range s.nums {
		var part string
		part, v, _ = strings.Cut(v, ".")
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return semver{}
		}
		s.nums[i] = n
	}
	s.ok = v == ""
	return s
}

// comparePrerelease follows semver: dot-separated identifiers, numeric ones
// compared as numbers and below alphanumeric ones, fewer identifiers first.
func comparePrerelease(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		na, errA := strconv.Atoi(as[i])
		nb, errB := strconv.Atoi(bs[i])
		switch {
		case errA == nil && errB == nil:
			if na != nb {
				return sign(na - nb)
			}
		case errA == nil:
			return -1
		case errB == nil:
			return 1
		default:
			if c := strings.Compare(as[i], bs[i]); c != 0 {
				return c
			}
		}
	}
	return sign(len(as) - len(bs))
}

func sign(n int) int {
	switch {
	case n > 0:
		return 1
	case n < 0:
		return -1
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// reason is the proxy's own words for an error, as ": LINE": the first line
// of its answer, unless that is a web page (a plain file server's 404 page).
func reason(body []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	if line == "" || strings.HasPrefix(line, "<") {
		return ""
	}
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return ": " + line
}

// A reactor: the host calls the exports; main never runs.
func main() {}
