module example.com/gomodule

// 1.24: the first Go with go:wasmexport. Standard library only, so there is
// no go.sum and nothing to download.
go 1.24
