;; Exports an interface instance (not world-level functions), so hosts must
;; walk into `test:iface/math@0.1.0` to find `double`.
(component
  (core module $m
    (func (export "double") (param i32) (result i32)
      (i32.mul (local.get 0) (i32.const 2))))
  (core instance $i (instantiate $m))
  (func $double (param "x" s32) (result s32)
    (canon lift (core func $i "double")))
  (instance $math (export "double" (func $double)))
  (export "test:iface/math@0.1.0" (instance $math))
)
