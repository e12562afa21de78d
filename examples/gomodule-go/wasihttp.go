// HTTP GET over wasi:http/outgoing-handler@0.2.0, the only way out of the
// sandbox: GOOS=wasip1 has no sockets, and net/http does not work there. The
// host's network gate decides per request (scheme, host, port) whether it
// may leave. Flat signatures and memory layouts follow the canonical ABI for
// the WIT in wit/deps/http (see cabi.go for why they are written by hand).

package main

import (
	"fmt"
	"net/url"
)

//go:wasmimport wasi:http/types@0.2.0 [constructor]fields
func newFields() uint32

//go:wasmimport wasi:http/types@0.2.0 [method]fields.append
func fieldsAppend(self, namePtr, nameLen, valuePtr, valueLen, ret uint32)

//go:wasmimport wasi:http/types@0.2.0 [constructor]outgoing-request
func newOutgoingRequest(headers uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [method]outgoing-request.set-method
func setMethod(self, tag, ptr, n uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [method]outgoing-request.set-scheme
func setScheme(self, isSome, tag, ptr, n uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [method]outgoing-request.set-authority
func setAuthority(self, isSome, ptr, n uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [method]outgoing-request.set-path-with-query
func setPathWithQuery(self, isSome, ptr, n uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [resource-drop]outgoing-request
func dropOutgoingRequest(self uint32)

//go:wasmimport wasi:http/outgoing-handler@0.2.0 handle
func handle(request, optionsIsSome, options, ret uint32)

//go:wasmimport wasi:http/types@0.2.0 [method]future-incoming-response.subscribe
func subscribeResponse(self uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [method]future-incoming-response.get
func getResponse(self, ret uint32)

//go:wasmimport wasi:http/types@0.2.0 [resource-drop]future-incoming-response
func dropFutureResponse(self uint32)

//go:wasmimport wasi:http/types@0.2.0 [method]incoming-response.status
func responseStatus(self uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [method]incoming-response.consume
func consumeResponse(self, ret uint32)

//go:wasmimport wasi:http/types@0.2.0 [resource-drop]incoming-response
func dropResponse(self uint32)

//go:wasmimport wasi:http/types@0.2.0 [method]incoming-body.stream
func bodyStream(self, ret uint32)

//go:wasmimport wasi:http/types@0.2.0 [static]incoming-body.finish
func finishBody(body uint32) uint32

//go:wasmimport wasi:http/types@0.2.0 [resource-drop]future-trailers
func dropFutureTrailers(self uint32)

//go:wasmimport wasi:io/poll@0.2.0 [method]pollable.block
func block(self uint32)

//go:wasmimport wasi:io/poll@0.2.0 [resource-drop]pollable
func dropPollable(self uint32)

//go:wasmimport wasi:io/streams@0.2.0 [method]input-stream.blocking-read
func blockingRead(self uint32, n uint64, ret uint32)

//go:wasmimport wasi:io/streams@0.2.0 [resource-drop]input-stream
func dropInputStream(self uint32)

//go:wasmimport wasi:io/error@0.2.0 [resource-drop]error
func dropIOError(self uint32)

// The cases of wasi:http/types.error-code, in WIT order (the tag is the index).
var errorCodes = [...]string{
	"DNS-timeout", "DNS-error", "destination-not-found", "destination-unavailable",
	"destination-IP-prohibited", "destination-IP-unroutable", "connection-refused",
	"connection-terminated", "connection-timeout", "connection-read-timeout",
	"connection-write-timeout", "connection-limit-reached", "TLS-protocol-error",
	"TLS-certificate-error", "TLS-alert-received", "HTTP-request-denied",
	"HTTP-request-length-required", "HTTP-request-body-size", "HTTP-request-method-invalid",
	"HTTP-request-URI-invalid", "HTTP-request-URI-too-long", "HTTP-request-header-section-size",
	"HTTP-request-header-size", "HTTP-request-trailer-section-size", "HTTP-request-trailer-size",
	"HTTP-response-incomplete", "HTTP-response-header-section-size", "HTTP-response-header-size",
	"HTTP-response-body-size", "HTTP-response-trailer-section-size", "HTTP-response-trailer-size",
	"HTTP-response-transfer-coding", "HTTP-response-content-coding", "HTTP-response-timeout",
	"HTTP-upgrade-failed", "HTTP-protocol-error", "loop-detected", "configuration-error",
	"internal-error",
}

// errorCode names the error-code stored at addr (tag u8 at 0, payload at 8).
func errorCode(addr uint32) string {
	tag := load8(addr)
	if int(tag) >= len(errorCodes) {
		return fmt.Sprintf("error-code %d", tag)
	}
	name := errorCodes[tag]
	// internal-error(option<string>): the host's own words, when it gives some.
	if name == "internal-error" && load8(addr+8) == 1 {
		name += ": " + liftString(load32(addr+12), load32(addr+16))
	}
	return name
}

// maxBody bounds what one response may bring into memory.
const maxBody = 8 << 20 // 8 MiB

// httpGet fetches rawURL and returns the status and the body.
func httpGet(rawURL string) (int, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, nil, err
	}
	var scheme uint32 // the method and scheme variants: 0 is GET, and HTTP
	switch u.Scheme {
	case "http":
	case "https":
		scheme = 1
	default:
		return 0, nil, fmt.Errorf("%s: only http and https URLs", rawURL)
	}

	headers := newFields()
	ret := alloc(16)
	name, nameLen := lowerString("user-agent")
	value, valueLen := lowerString("wassette-gomodule-go/0.1.0")
	fieldsAppend(headers, name, nameLen, value, valueLen, ret)
	request := newOutgoingRequest(headers) // takes the fields
	path, pathLen := lowerString(u.RequestURI())
	host, hostLen := lowerString(u.Host)
	if setMethod(request, 0, 0, 0) != 0 ||
		setScheme(request, 1, scheme, 0, 0) != 0 ||
		setAuthority(request, 1, host, hostLen) != 0 ||
		setPathWithQuery(request, 1, path, pathLen) != 0 {
		dropOutgoingRequest(request)
		return 0, nil, fmt.Errorf("%s: not a valid request", rawURL)
	}

	// result<future-incoming-response, error-code>: tag at 0, payload at 8.
	ret = alloc(40)
	handle(request, 0, 0, ret) // takes the request
	if load8(ret) != 0 {
		return 0, nil, fmt.Errorf("cannot reach %s: %s", u.Redacted(), errorCode(ret+8))
	}
	future := load32(ret + 8)
	defer dropFutureResponse(future)
	ready := subscribeResponse(future)
	block(ready)
	dropPollable(ready)

	// option<result<result<incoming-response, error-code>>>: option tag at 0,
	// outer result tag at 8, inner result tag at 16, response or error at 24.
	ret = alloc(56)
	getResponse(future, ret)
	if load8(ret) == 0 || load8(ret+8) != 0 {
		return 0, nil, fmt.Errorf("%s: no response", u.Redacted())
	}
	if load8(ret+16) != 0 {
		return 0, nil, fmt.Errorf("cannot reach %s: %s", u.Redacted(), errorCode(ret+24))
	}
	response := load32(ret + 24)
	defer dropResponse(response)
	status := int(responseStatus(response))

	ret = alloc(8) // result<incoming-body>, then result<input-stream>
	consumeResponse(response, ret)
	if load8(ret) != 0 {
		return 0, nil, fmt.Errorf("%s: no body", u.Redacted())
	}
	body := load32(ret + 4)
	bodyStream(body, ret)
	if load8(ret) != 0 {
		return 0, nil, fmt.Errorf("%s: no body stream", u.Redacted())
	}
	stream := load32(ret + 4)

	// result<list<u8>, stream-error>: tag at 0; ok: the list at 4;
	// err: stream-error's tag at 4 (0 last-operation-failed, 1 closed) and
	// its error at 8.
	var data []byte
	ret = alloc(12)
	for {
		blockingRead(stream, 64<<10, ret)
		if load8(ret) != 0 {
			if load8(ret+4) == 0 {
				dropIOError(load32(ret + 8))
				err = fmt.Errorf("%s: the response broke off", u.Redacted())
			}
			break
		}
		data = append(data, bytesAt(load32(ret+4), load32(ret+8))...)
		if len(data) > maxBody {
			err = fmt.Errorf("%s: response larger than %d bytes", u.Redacted(), maxBody)
			break
		}
	}
	dropInputStream(stream) // before finish: the stream is the body's child
	dropFutureTrailers(finishBody(body))
	if err != nil {
		return 0, nil, err
	}
	return status, data, nil
}
