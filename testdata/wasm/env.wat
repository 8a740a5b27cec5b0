;; Prints every environment variable as KEY=VALUE, one a line, sorted by key.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0..64: scratch; 1024..8192: the variables' addresses; 8192..: their text.
  (memory (export "memory") 4)
  (data (i32.const 64) "\n")
  (global $pointers i32 (i32.const 1024))
  (global $text i32 (i32.const 8192))

  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  (func $strlen (param $ptr i32) (result i32)
    (local $end i32)
    (local.set $end (local.get $ptr))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $end))))
        (local.set $end (i32.add (local.get $end) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $end) (local.get $ptr)))

  ;; Whether the NUL-terminated string at $a sorts after the one at $b (bytewise).
  (func $after (param $a i32) (param $b i32) (result i32)
    (local $x i32) (local $y i32)
    (loop $next
      (local.set $x (i32.load8_u (local.get $a)))
      (local.set $y (i32.load8_u (local.get $b)))
      (if (i32.ne (local.get $x) (local.get $y))
        (then (return (i32.gt_u (local.get $x) (local.get $y)))))
      (if (i32.eqz (local.get $x)) (then (return (i32.const 0))))
      (local.set $a (i32.add (local.get $a) (i32.const 1)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $next))
    (i32.const 0))

  (func (export "_start")
    (local $count i32) (local $i i32) (local $j i32) (local $key i32) (local $ptr i32)
    (if (call $environ_sizes_get (i32.const 16) (i32.const 20))
      (then (call $proc_exit (i32.const 1))))
    (local.set $count (i32.load (i32.const 16)))
    ;; Refuse what does not fit rather than write past the tables.
    (if (i32.or (i32.gt_u (local.get $count) (i32.const 1792))
                (i32.gt_u (i32.load (i32.const 20)) (i32.const 253952)))
      (then (call $proc_exit (i32.const 2))))
    (if (call $environ_get (global.get $pointers) (global.get $text))
      (then (call $proc_exit (i32.const 1))))
    ;; Insertion sort of the addresses.
    (local.set $i (i32.const 1))
    (block $sorted
      (loop $outer
        (br_if $sorted (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $key
          (i32.load (i32.add (global.get $pointers) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $j (local.get $i))
        (block $placed
          (loop $inner
            (br_if $placed (i32.eqz (local.get $j)))
            (local.set $ptr
              (i32.load (i32.add (global.get $pointers)
                                 (i32.shl (i32.sub (local.get $j) (i32.const 1)) (i32.const 2)))))
            (br_if $placed (i32.eqz (call $after (local.get $ptr) (local.get $key))))
            (i32.store (i32.add (global.get $pointers) (i32.shl (local.get $j) (i32.const 2)))
                       (local.get $ptr))
            (local.set $j (i32.sub (local.get $j) (i32.const 1)))
            (br $inner)))
        (i32.store (i32.add (global.get $pointers) (i32.shl (local.get $j) (i32.const 2)))
                   (local.get $key))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (local.set $i (i32.const 0))
    (block $printed
      (loop $each
        (br_if $printed (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $ptr
          (i32.load (i32.add (global.get $pointers) (i32.shl (local.get $i) (i32.const 2)))))
        (call $write (local.get $ptr) (call $strlen (local.get $ptr)))
        (call $write (i32.const 64) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))))
