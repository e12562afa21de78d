;; A wasi_snapshot_preview1 adapter for Go's GOOS=wasip1 reactors, in the
;; shape `wasm-tools component new --adapt` expects: it implements, over
;; WASI 0.2, the preview1 functions that the Go runtime and package os
;; import.
;;
;; Why not the standard reactor adapter: it allocates its state and stack
;; either through the module's cabi_realloc (a Go function, which cannot run
;; while the Go runtime initializes, and the runtime calls preview1 then) or
;; with memory.grow (pages that the Go heap, which takes all memory after its
;; data for its own, later overwrites). This adapter keeps no state in
;; memory: it uses the range 8192..12287, inside the 4096..12287 that Go's
;; linker reserves (for wasm_exec.js, unused on wasip1): 64 bytes of scratch
;; for the results of WASI 0.2 calls, then the environment variables while
;; they are copied.
;;
;; What it does not provide: files and sockets (no preopened directories;
;; fd_read, path_open, ...: a component that imports them does not link),
;; program arguments (none), and environment variables beyond about 4 KB
;; (the call traps).
(module
  (import "env" "memory" (memory 0))
  (import "wasi:clocks/wall-clock@0.2.0" "now" (func $wall_now (param i32)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "now" (func $mono_now (result i64)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration" (func $subscribe_duration (param i64) (result i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (import "wasi:io/error@0.2.0" "[resource-drop]error" (func $drop_error (param i32)))
  (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush" (func $write_and_flush (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.0" "[resource-drop]output-stream" (func $drop_output (param i32)))
  (import "wasi:random/random@0.2.0" "get-random-u64" (func $random_u64 (result i64)))
  (import "wasi:cli/stdout@0.2.0" "get-stdout" (func $get_stdout (result i32)))
  (import "wasi:cli/stderr@0.2.0" "get-stderr" (func $get_stderr (result i32)))
  (import "wasi:cli/exit@0.2.0" "exit" (func $exit (param i32)))
  (import "wasi:cli/environment@0.2.0" "get-environment" (func $get_environment (param i32)))

  ;; preview1 errno values used here.
  (global $EBADF i32 (i32.const 8))
  (global $EINVAL i32 (i32.const 28))
  (global $EIO i32 (i32.const 29))
  ;; 64 bytes of scratch for the results of WASI 0.2 calls, then the
  ;; environment's strings (see above).
  (global $scratch i32 (i32.const 8192))
  (global $heap_start i32 (i32.const 8256))
  (global $heap_end i32 (i32.const 12288))
  (global $heap (mut i32) (i32.const 8256))

  ;; The memory get-environment's list and strings are lowered into: bump
  ;; allocation, reset before each call.
  (func (export "cabi_import_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $size)) (global.get $heap_end))
      (then unreachable))
    (if (local.get $old_size)
      (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    local.get $p)

  ;; get-environment: list<tuple<string, string>>, the list's address at
  ;; scratch+0 and its length at scratch+4; each entry 16 bytes (key address,
  ;; key length, value address, value length).
  (func $environment
    (global.set $heap (global.get $heap_start))
    (call $get_environment (global.get $scratch)))

  (func (export "sched_yield") (result i32)
    i32.const 0)

  (func (export "proc_exit") (param $code i32)
    ;; exit(result<_, _>): ok for status 0, err otherwise.
    (call $exit (i32.ne (local.get $code) (i32.const 0)))
    unreachable)

  ;; No arguments.
  (func (export "args_sizes_get") (param $argc i32) (param $size i32) (result i32)
    (i32.store (local.get $argc) (i32.const 0))
    (i32.store (local.get $size) (i32.const 0))
    i32.const 0)
  (func (export "args_get") (param i32 i32) (result i32)
    i32.const 0)

  ;; The environment the policy grants, as KEY=VALUE\0 strings.
  (func (export "environ_sizes_get") (param $count i32) (param $size i32) (result i32)
    (local $entry i32) (local $end i32) (local $total i32)
    (call $environment)
    (local.set $entry (i32.load (global.get $scratch)))
    (local.set $end
      (i32.add (local.get $entry) (i32.shl (i32.load offset=4 (global.get $scratch)) (i32.const 4))))
    (block $done
      (loop $entries
        (br_if $done (i32.ge_u (local.get $entry) (local.get $end)))
        (local.set $total
          (i32.add (local.get $total)
            (i32.add (i32.const 2)
              (i32.add (i32.load offset=4 (local.get $entry)) (i32.load offset=12 (local.get $entry))))))
        (local.set $entry (i32.add (local.get $entry) (i32.const 16)))
        (br $entries)))
    (i32.store (local.get $count) (i32.load offset=4 (global.get $scratch)))
    (i32.store (local.get $size) (local.get $total))
    i32.const 0)
  (func (export "environ_get") (param $ptrs i32) (param $buf i32) (result i32)
    (local $entry i32) (local $end i32) (local $len i32)
    (call $environment)
    (local.set $entry (i32.load (global.get $scratch)))
    (local.set $end
      (i32.add (local.get $entry) (i32.shl (i32.load offset=4 (global.get $scratch)) (i32.const 4))))
    (block $done
      (loop $entries
        (br_if $done (i32.ge_u (local.get $entry) (local.get $end)))
        (i32.store (local.get $ptrs) (local.get $buf))
        (local.set $ptrs (i32.add (local.get $ptrs) (i32.const 4)))
        (local.set $len (i32.load offset=4 (local.get $entry)))
        (memory.copy (local.get $buf) (i32.load (local.get $entry)) (local.get $len))
        (local.set $buf (i32.add (local.get $buf) (local.get $len)))
        (i32.store8 (local.get $buf) (i32.const 61)) ;; '='
        (local.set $buf (i32.add (local.get $buf) (i32.const 1)))
        (local.set $len (i32.load offset=12 (local.get $entry)))
        (memory.copy (local.get $buf) (i32.load offset=8 (local.get $entry)) (local.get $len))
        (local.set $buf (i32.add (local.get $buf) (local.get $len)))
        (i32.store8 (local.get $buf) (i32.const 0))
        (local.set $buf (i32.add (local.get $buf) (i32.const 1)))
        (local.set $entry (i32.add (local.get $entry) (i32.const 16)))
        (br $entries)))
    i32.const 0)

  ;; clock ids: 0 realtime, 1 monotonic; nanoseconds.
  (func (export "clock_time_get") (param $id i32) (param $precision i64) (param $out i32) (result i32)
    (if (i32.eqz (local.get $id))
      (then
        ;; datetime { seconds: u64 @0, nanoseconds: u32 @8 }
        (call $wall_now (global.get $scratch))
        (i64.store (local.get $out)
          (i64.add
            (i64.mul (i64.load (global.get $scratch)) (i64.const 1000000000))
            (i64.load32_u offset=8 (global.get $scratch))))
        (return (i32.const 0))))
    (if (i32.eq (local.get $id) (i32.const 1))
      (then
        (i64.store (local.get $out) (call $mono_now))
        (return (i32.const 0))))
    global.get $EINVAL)

  (func (export "random_get") (param $buf i32) (param $len i32) (result i32)
    (local $word i64)
    (block $done
      (loop $words
        (br_if $done (i32.lt_u (local.get $len) (i32.const 8)))
        (i64.store (local.get $buf) (call $random_u64))
        (local.set $buf (i32.add (local.get $buf) (i32.const 8)))
        (local.set $len (i32.sub (local.get $len) (i32.const 8)))
        (br $words)))
    (if (local.get $len)
      (then
        (local.set $word (call $random_u64))
        (loop $bytes
          (i64.store8 (local.get $buf) (local.get $word))
          (local.set $word (i64.shr_u (local.get $word) (i64.const 8)))
          (local.set $buf (i32.add (local.get $buf) (i32.const 1)))
          (local.set $len (i32.sub (local.get $len) (i32.const 1)))
          (br_if $bytes (local.get $len)))))
    i32.const 0)

  ;; Only stdout (1) and stderr (2). blocking-write-and-flush takes at most
  ;; 4096 bytes a call.
  (func (export "fd_write") (param $fd i32) (param $iovs i32) (param $n i32) (param $written i32) (result i32)
    (local $stream i32) (local $ptr i32) (local $len i32) (local $chunk i32) (local $total i32) (local $errno i32)
    (if (i32.eq (local.get $fd) (i32.const 1))
      (then (local.set $stream (call $get_stdout)))
      (else
        (if (i32.eq (local.get $fd) (i32.const 2))
          (then (local.set $stream (call $get_stderr)))
          (else (return (global.get $EBADF))))))
    (block $end
      (loop $iov
        (br_if $end (i32.eqz (local.get $n)))
        (local.set $ptr (i32.load (local.get $iovs)))
        (local.set $len (i32.load offset=4 (local.get $iovs)))
        (block $iov_done
          (loop $chunks
            (br_if $iov_done (i32.eqz (local.get $len)))
            (local.set $chunk
              (select (i32.const 4096) (local.get $len) (i32.gt_u (local.get $len) (i32.const 4096))))
            (call $write_and_flush (local.get $stream) (local.get $ptr) (local.get $chunk) (global.get $scratch))
            ;; result<_, stream-error>: tag u8 @0; stream-error: tag u8 @4,
            ;; the error handle @8 when last-operation-failed (tag 0).
            (if (i32.load8_u (global.get $scratch))
              (then
                (if (i32.eqz (i32.load8_u offset=4 (global.get $scratch)))
                  (then (call $drop_error (i32.load offset=8 (global.get $scratch)))))
                (local.set $errno (global.get $EIO))
                (br $end)))
            (local.set $ptr (i32.add (local.get $ptr) (local.get $chunk)))
            (local.set $len (i32.sub (local.get $len) (local.get $chunk)))
            (local.set $total (i32.add (local.get $total) (local.get $chunk)))
            (br $chunks)))
        (local.set $iovs (i32.add (local.get $iovs) (i32.const 8)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $iov)))
    (call $drop_output (local.get $stream))
    (i32.store (local.get $written) (local.get $total))
    local.get $errno)

  ;; Package os (which fmt imports) asks these of the standard descriptors
  ;; and of the preopened directories (there are none) while it initializes.
  (func (export "fd_prestat_get") (param i32 i32) (result i32)
    global.get $EBADF)
  (func (export "fd_prestat_dir_name") (param i32 i32 i32) (result i32)
    global.get $EBADF)
  ;; fdstat: filetype u8 @0 (2 = character device), flags u16 @2, rights
  ;; base u64 @8, rights inheriting u64 @16.
  (func (export "fd_fdstat_get") (param $fd i32) (param $out i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (global.get $EBADF))))
    (i64.store (local.get $out) (i64.const 2))
    (i64.store offset=8 (local.get $out) (i64.const -1))
    (i64.store offset=16 (local.get $out) (i64.const -1))
    i32.const 0)
  ;; Writes block until done whatever the flags say, so non-blocking mode
  ;; is accepted and ignored.
  (func (export "fd_fdstat_set_flags") (param $fd i32) (param i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (global.get $EBADF))))
    i32.const 0)
  (func (export "fd_close") (param $fd i32) (result i32)
    (if (i32.gt_u (local.get $fd) (i32.const 2)) (then (return (global.get $EBADF))))
    i32.const 0)

  ;; The Go scheduler sleeps here when every goroutine waits on a timer.
  ;; Subscriptions are 48 bytes: userdata u64 @0, tag u8 @8 (0 clock,
  ;; 1 fd_read, 2 fd_write), clock: id u32 @16, timeout u64 @24, flags u16
  ;; @40 (1 = absolute). Events are 32 bytes: userdata u64 @0, error u16 @8,
  ;; type u8 @10. fd subscriptions are reported ready at once (Go only polls
  ;; fds it set non-blocking, which this adapter has none of); otherwise the
  ;; call sleeps until the earliest clock and reports that one.
  (func (export "poll_oneoff") (param $in i32) (param $out i32) (param $n i32) (param $nevents i32) (result i32)
    (local $i i32) (local $sub i32) (local $events i32) (local $ev i32)
    (local $best i32) (local $wait i64) (local $timeout i64) (local $now i64) (local $pollable i32)
    (if (i32.eqz (local.get $n)) (then (return (global.get $EINVAL))))
    (local.set $best (i32.const -1))
    (local.set $wait (i64.const -1))
    (local.set $now (call $mono_now))
    (loop $subs
      (local.set $sub (i32.add (local.get $in) (i32.mul (local.get $i) (i32.const 48))))
      (if (i32.eqz (i32.load8_u offset=8 (local.get $sub)))
        (then
          (local.set $timeout (i64.load offset=24 (local.get $sub)))
          ;; An absolute monotonic deadline becomes a duration from now.
          (if (i32.and (i32.load16_u offset=40 (local.get $sub)) (i32.const 1))
            (then
              (local.set $timeout
                (select
                  (i64.sub (local.get $timeout) (local.get $now))
                  (i64.const 0)
                  (i64.gt_u (local.get $timeout) (local.get $now))))))
          (if (i64.lt_u (local.get $timeout) (local.get $wait))
            (then
              (local.set $wait (local.get $timeout))
              (local.set $best (local.get $i)))))
        (else
          (local.set $ev (i32.add (local.get $out) (i32.mul (local.get $events) (i32.const 32))))
          (i64.store (local.get $ev) (i64.load (local.get $sub)))
          (i32.store16 offset=8 (local.get $ev) (i32.const 0))
          (i32.store8 offset=10 (local.get $ev) (i32.load8_u offset=8 (local.get $sub)))
          (i64.store offset=16 (local.get $ev) (i64.const 0))
          (i32.store16 offset=24 (local.get $ev) (i32.const 0))
          (local.set $events (i32.add (local.get $events) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $subs (i32.lt_u (local.get $i) (local.get $n))))
    (if (i32.and (i32.eqz (local.get $events)) (i32.ge_s (local.get $best) (i32.const 0)))
      (then
        (local.set $pollable (call $subscribe_duration (local.get $wait)))
        (call $block (local.get $pollable))
        (call $drop_pollable (local.get $pollable))
        (local.set $sub (i32.add (local.get $in) (i32.mul (local.get $best) (i32.const 48))))
        (i64.store (local.get $out) (i64.load (local.get $sub)))
        (i32.store16 offset=8 (local.get $out) (i32.const 0))
        (i32.store8 offset=10 (local.get $out) (i32.const 0))
        (local.set $events (i32.const 1))))
    (i32.store (local.get $nevents) (local.get $events))
    i32.const 0)
)
