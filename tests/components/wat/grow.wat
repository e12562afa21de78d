;; Memory-limit tests. The memory has no declared maximum, so only the host's
;; limits stop it.
(component
  (core module $m
    (memory (export "memory") 1)
    ;; Returns the previous size in pages, or -1 when the grow was refused.
    (func (export "grow") (param i32) (result i32)
      (memory.grow (local.get 0)))
    ;; Grow one page at a time until refused, then trap.
    (func (export "grow-loop")
      (loop $l
        (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
      unreachable)
  )
  (core instance $i (instantiate $m))
  (func (export "grow") (param "pages" u32) (result s32)
    (canon lift (core func $i "grow")))
  (func (export "grow-loop") (canon lift (core func $i "grow-loop")))
)
