//! The module's heap: the C library's allocator, but every block is
//! overwritten with zeros before it is given back.
//!
//! A password passes through buffers our code does not own: the gRPC
//! request frame tonic encodes, h2's write buffer, rustls's record buffers.
//! They are freed when the call's runtime and connection are dropped, and
//! glibc leaves a freed block's bytes as they were (it only reuses the
//! first 16 for its lists), so without this the secret stays readable in a
//! core dump or through a later heap bug of the host process. Every Rust
//! allocation of this library goes through here; the host's own memory
//! (malloc from C) does not.
//!
//! The price is one `memset` per freed byte, and a reallocation always
//! moves (`GlobalAlloc`'s default `realloc`: allocate, copy, free the old
//! block, which wipes it).

use std::alloc::{GlobalAlloc, Layout, System};

pub struct WipingAllocator;

// SAFETY: every block comes from `System` and goes back to it with the
// layout it was allocated with; wiping writes only inside the block.
unsafe impl GlobalAlloc for WipingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes from this
        // allocator (the caller's contract); explicit_bzero is a memset the
        // compiler may not drop as a dead store.
        unsafe {
            libc::explicit_bzero(ptr.cast(), layout.size());
            System.dealloc(ptr, layout);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reallocation_keeps_the_contents() {
        let allocator = WipingAllocator;
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a fresh block of 64 bytes, written, then freed once.
        unsafe {
            let block = allocator.alloc(layout);
            assert!(!block.is_null());
            block.write_bytes(0xa5, 64);
            let grown = allocator.realloc(block, layout, 4096);
            assert!(!grown.is_null());
            assert_eq!(*grown.add(63), 0xa5);
            allocator.dealloc(grown, Layout::from_size_align(4096, 8).unwrap());
        }
    }
}
