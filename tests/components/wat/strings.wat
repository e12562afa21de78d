;; String in/out through linear memory: needs `memory` + `realloc` canon options.
(component
  (core module $m
    (memory (export "memory") 1)
    ;; Bump allocator above the 1 KiB scratch area; never frees (instances are
    ;; short-lived). Grows memory on demand so large strings work.
    (global $bump (mut i32) (i32.const 1024))
    (func $realloc (export "realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $p i32) (local $end i32)
      (local.set $p
        (i32.and
          (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $size)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.sub
                    (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                    (memory.size)))
                (i32.const -1))
            (then unreachable))))
      (global.set $bump (local.get $end))
      ;; A true realloc (never used for utf8 -> utf8) keeps the old contents.
      (if (local.get $old)
        (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
      (local.get $p))
    ;; string results go through a return area holding (ptr, len).
    (func (export "echo") (param $ptr i32) (param $len i32) (result i32)
      (i32.store (i32.const 8) (local.get $ptr))
      (i32.store (i32.const 12) (local.get $len))
      (i32.const 8))
    ;; Number of Unicode scalar values: count bytes that are not UTF-8
    ;; continuation bytes (10xxxxxx). The host guarantees valid UTF-8.
    (func (export "length") (param $ptr i32) (param $len i32) (result i32)
      (local $end i32) (local $n i32)
      (local.set $end (i32.add (local.get $ptr) (local.get $len)))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $ptr) (local.get $end)))
          (if (i32.ne (i32.and (i32.load8_u (local.get $ptr)) (i32.const 0xC0)) (i32.const 0x80))
            (then (local.set $n (i32.add (local.get $n) (i32.const 1)))))
          (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
          (br $next)))
      (local.get $n))
  )
  (core instance $i (instantiate $m))
  (func (export "echo") (param "s" string) (result string)
    (canon lift (core func $i "echo")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (func (export "length") (param "s" string) (result u32)
    (canon lift (core func $i "length")
      (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
)
