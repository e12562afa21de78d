;; Exports `test:loop/ping@0.1.0#ping(n) -> u32`: 0 when n is 0, else
;; `pong(n - 1) + 1` through its import of `test:loop/pong@0.1.0`, which the
;; pong fixture exports. Loaded together they form a cycle of imports, each
;; call one linked call deeper: what bounds a chain's depth is tested with it.
(component
  (import "test:loop/pong@0.1.0" (instance $other
    (export "pong" (func (param "n" u32) (result u32)))))
  (alias export $other "pong" (func $other-f))
  (core func $lowered (canon lower (func $other-f)))
  (core instance $imports (export "pong" (func $lowered)))
  (core module $m
    (import "host" "pong" (func $other (param i32) (result i32)))
    (func (export "ping") (param i32) (result i32)
      (if (result i32) (i32.eqz (local.get 0))
        (then (i32.const 0))
        (else (i32.add (call $other (i32.sub (local.get 0) (i32.const 1))) (i32.const 1))))))
  (core instance $i (instantiate $m (with "host" (instance $imports))))
  (func $ping (param "n" u32) (result u32) (canon lift (core func $i "ping")))
  (instance $out (export "ping" (func $ping)))
  (export "test:loop/ping@0.1.0" (instance $out))
)
