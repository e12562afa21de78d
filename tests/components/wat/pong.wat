;; Exports `test:loop/pong@0.1.0#pong(n) -> u32`: 0 when n is 0, else
;; `ping(n - 1) + 1` through its import of `test:loop/ping@0.1.0`, which the
;; ping fixture exports. Loaded together they form a cycle of imports, each
;; call one linked call deeper: what bounds a chain's depth is tested with it.
(component
  (import "test:loop/ping@0.1.0" (instance $other
    (export "ping" (func (param "n" u32) (result u32)))))
  (alias export $other "ping" (func $other-f))
  (core func $lowered (canon lower (func $other-f)))
  (core instance $imports (export "ping" (func $lowered)))
  (core module $m
    (import "host" "ping" (func $other (param i32) (result i32)))
    (func (export "pong") (param i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0))
        (then (i32.const 0))
        (else (i32.add (call $other (i32.sub (local.get 0) (i32.const 1))) (i32.const 1))))))
  (core instance $i (instantiate $m (with "host" (instance $imports))))
  (func $pong (param "n" u32) (result u32) (canon lift (core func $i "pong")))
  (instance $out (export "pong" (func $pong)))
  (export "test:loop/pong@0.1.0" (instance $out))
)
