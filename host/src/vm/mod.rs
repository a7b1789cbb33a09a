//! Local virtual machines (the QEMU driver's host side): first-boot configuration for
//! cloud images.

pub mod seed;
