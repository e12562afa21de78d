;; State that outlives a call would show here. `bump` returns the sum of what
;; it finds in four places before adding one to each: a global, a word in the
;; data segment, a word in zero-filled memory, and a word in a page grown by
;; the call itself. In a fresh instance that sum is always 0. `bump-and-trap`
;; adds 100 to the global, then traps: an instance kept across calls must not
;; be used again after it (tests/test_instances.py).
(component
  (core module $m
    (memory (export "memory") 2)
    (global $g (mut i32) (i32.const 0))
    (data (i32.const 16) "\00\00\00\00")
    (func $bump (param $addr i32) (result i32)
      (local $old i32)
      (local.set $old (i32.load (local.get $addr)))
      (i32.store (local.get $addr) (i32.add (local.get $old) (i32.const 1)))
      (local.get $old))
    (func (export "bump") (result i32)
      (local $sum i32)
      ;; The grown page starts at 2 * 65536 = 131072.
      (drop (memory.grow (i32.const 1)))
      (local.set $sum (global.get $g))
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (local.set $sum (i32.add (local.get $sum) (call $bump (i32.const 16))))
      (local.set $sum (i32.add (local.get $sum) (call $bump (i32.const 70000))))
      (local.set $sum (i32.add (local.get $sum) (call $bump (i32.const 131080))))
      (local.get $sum))
    (func (export "bump-and-trap")
      (global.set $g (i32.add (global.get $g) (i32.const 100)))
      unreachable)
  )
  (core instance $i (instantiate $m))
  (func (export "bump") (result u32) (canon lift (core func $i "bump")))
  (func (export "bump-and-trap") (canon lift (core func $i "bump-and-trap")))
)
