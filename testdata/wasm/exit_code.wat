;; Prints "Exiting with N" and exits with N, read from the environment variable EXIT_CODE
;; (decimal; 0 when unset).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0..64: scratch; 64..: the message; 128..160: digits; 1024..8192: the variables' addresses;
  ;; 8192..: their text.
  (memory (export "memory") 4)
  (data (i32.const 64) "Exiting with ")
  (data (i32.const 96) "EXIT_CODE=")

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; Whether the string at $ptr starts with "EXIT_CODE=".
  (func $is_exit_code (param $ptr i32) (result i32)
    (local $i i32)
    (block $differs
      (loop $next
        (if (i32.eq (local.get $i) (i32.const 10)) (then (return (i32.const 1))))
        (br_if $differs
          (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                  (i32.load8_u (i32.add (i32.const 96) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "_start")
    (local $count i32) (local $i i32) (local $ptr i32) (local $code i32) (local $digit i32)
    (local $at i32)
    (if (call $environ_sizes_get (i32.const 16) (i32.const 20))
      (then (call $proc_exit (i32.const 1))))
    (local.set $count (i32.load (i32.const 16)))
    (if (i32.or (i32.gt_u (local.get $count) (i32.const 1792))
                (i32.gt_u (i32.load (i32.const 20)) (i32.const 253952)))
      (then (call $proc_exit (i32.const 2))))
    (if (call $environ_get (i32.const 1024) (i32.const 8192))
      (then (call $proc_exit (i32.const 1))))
    (block $found
      (loop $each
        (br_if $found (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $ptr (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (if (call $is_exit_code (local.get $ptr))
          (then
            (local.set $ptr (i32.add (local.get $ptr) (i32.const 10)))
            (block $end
              (loop $digits
                (local.set $digit (i32.sub (i32.load8_u (local.get $ptr)) (i32.const 48)))
                (br_if $end (i32.gt_u (local.get $digit) (i32.const 9)))
                (local.set $code
                  (i32.add (i32.mul (local.get $code) (i32.const 10)) (local.get $digit)))
                (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
                (br $digits)))
            (br $found)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    ;; The code in decimal, written backwards from 159 (a newline at 159).
    (i32.store8 (i32.const 159) (i32.const 10))
    (local.set $at (i32.const 159))
    (local.set $i (local.get $code))
    (loop $digit_out
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.rem_u (local.get $i) (i32.const 10))))
      (local.set $i (i32.div_u (local.get $i) (i32.const 10)))
      (br_if $digit_out (local.get $i)))
    (call $write (i32.const 64) (i32.const 13))
    (call $write (local.get $at) (i32.sub (i32.const 160) (local.get $at)))
    (call $proc_exit (local.get $code))))
