;; Always traps: for "a trap is an error value, not a crash" tests.
(component
  (core module $m
    (func (export "boom") unreachable))
  (core instance $i (instantiate $m))
  (func (export "boom") (canon lift (core func $i "boom")))
)
