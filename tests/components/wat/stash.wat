;; One call stores a value in zero-filled memory and computes for a while
;; (long enough to have its memory paged out meanwhile); `peek` reads that
;; word. In a fresh instance `peek` is always 0.
(component
  (core module $m
    (memory (export "memory") 2)
    (func (export "stash") (param $value i32) (param $rounds i32)
      (local $i i32)
      (i32.store (i32.const 70000) (local.get $value))
      (block $done
        (loop $l
          (br_if $done (i32.ge_u (local.get $i) (local.get $rounds)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $l))))
    (func (export "peek") (result i32) (i32.load (i32.const 70000)))
  )
  (core instance $i (instantiate $m))
  (func (export "stash") (param "value" u32) (param "rounds" u32) (canon lift (core func $i "stash")))
  (func (export "peek") (result u32) (canon lift (core func $i "peek")))
)
