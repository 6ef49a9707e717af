//! The COSEM interface classes IS 15959 meters use: id, version, name, and how many attributes
//! and methods each has (Blue Book), so requests for attributes that cannot exist are refused.

/// One interface class at one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceClass {
    pub id: u16,
    pub version: u8,
    pub name: &'static str,
    pub attributes: i8,
    pub methods: i8,
}

/// The classes of the IS 15959 catalogue.
pub const CLASSES: &[InterfaceClass] = &[
    InterfaceClass {
        id: 1,
        version: 0,
        name: "data",
        attributes: 2,
        methods: 0,
    },
    InterfaceClass {
        id: 3,
        version: 0,
        name: "register",
        attributes: 3,
        methods: 1,
    },
    InterfaceClass {
        id: 4,
        version: 0,
        name: "extended register",
        attributes: 5,
        methods: 1,
    },
    InterfaceClass {
        id: 5,
        version: 0,
        name: "demand register",
        attributes: 9,
        methods: 2,
    },
    InterfaceClass {
        id: 7,
        version: 1,
        name: "profile generic",
        attributes: 8,
        methods: 2,
    },
    InterfaceClass {
        id: 8,
        version: 0,
        name: "clock",
        attributes: 9,
        methods: 6,
    },
    InterfaceClass {
        id: 9,
        version: 0,
        name: "script table",
        attributes: 2,
        methods: 1,
    },
    InterfaceClass {
        id: 15,
        version: 1,
        name: "association LN",
        attributes: 11,
        methods: 4,
    },
    InterfaceClass {
        id: 18,
        version: 0,
        name: "image transfer",
        attributes: 7,
        methods: 4,
    },
    InterfaceClass {
        id: 20,
        version: 0,
        name: "activity calendar",
        attributes: 10,
        methods: 1,
    },
    InterfaceClass {
        id: 22,
        version: 0,
        name: "single action schedule",
        attributes: 4,
        methods: 0,
    },
    InterfaceClass {
        id: 40,
        version: 0,
        name: "push setup",
        attributes: 7,
        methods: 1,
    },
    InterfaceClass {
        id: 64,
        version: 0,
        name: "security setup",
        attributes: 5,
        methods: 2,
    },
    InterfaceClass {
        id: 70,
        version: 0,
        name: "disconnect control",
        attributes: 4,
        methods: 2,
    },
    InterfaceClass {
        id: 71,
        version: 0,
        name: "limiter",
        attributes: 11,
        methods: 0,
    },
];

impl InterfaceClass {
    /// The class with this id (and any version listed).
    pub fn get(id: u16) -> Option<&'static InterfaceClass> {
        CLASSES.iter().find(|c| c.id == id)
    }

    pub fn has_attribute(&self, attribute: i8) -> bool {
        (1..=self.attributes).contains(&attribute)
    }

    pub fn has_method(&self, method: i8) -> bool {
        (1..=self.methods).contains(&method)
    }

    /// The attribute holding the scaler/unit, for classes that have one.
    pub fn scaler_unit_attribute(&self) -> Option<i8> {
        matches!(self.id, 3..=5).then_some(3)
    }
}

/// Well-known attribute and method numbers, named as the Blue Book names them.
pub mod ids {
    pub const LOGICAL_NAME: i8 = 1;
    /// IC 1 value, IC 3/4 value, IC 8 time, IC 7 buffer.
    pub const VALUE: i8 = 2;
    pub const SCALER_UNIT: i8 = 3;
    /// IC 4 capture time, IC 5 capture time.
    pub const EXTENDED_CAPTURE_TIME: i8 = 5;

    pub const PROFILE_BUFFER: i8 = 2;
    pub const PROFILE_CAPTURE_OBJECTS: i8 = 3;
    pub const PROFILE_CAPTURE_PERIOD: i8 = 4;
    pub const PROFILE_SORT_METHOD: i8 = 5;
    pub const PROFILE_SORT_OBJECT: i8 = 6;
    pub const PROFILE_ENTRIES_IN_USE: i8 = 7;
    pub const PROFILE_ENTRIES: i8 = 8;

    pub const DISCONNECT_OUTPUT_STATE: i8 = 2;
    pub const DISCONNECT_CONTROL_STATE: i8 = 3;
    pub const DISCONNECT_CONTROL_MODE: i8 = 4;
    pub const REMOTE_DISCONNECT: i8 = 1;
    pub const REMOTE_RECONNECT: i8 = 2;

    pub const IMAGE_BLOCK_SIZE: i8 = 2;
    pub const IMAGE_TRANSFERRED_BLOCKS_STATUS: i8 = 3;
    pub const IMAGE_FIRST_NOT_TRANSFERRED_BLOCK: i8 = 4;
    pub const IMAGE_TRANSFER_ENABLED: i8 = 5;
    pub const IMAGE_TRANSFER_STATUS: i8 = 6;
    pub const IMAGE_TO_ACTIVATE_INFO: i8 = 7;
    pub const IMAGE_TRANSFER_INITIATE: i8 = 1;
    pub const IMAGE_BLOCK_TRANSFER: i8 = 2;
    pub const IMAGE_VERIFY: i8 = 3;
    pub const IMAGE_ACTIVATE: i8 = 4;

    pub const SCRIPT_EXECUTE: i8 = 1;
    pub const PUSH: i8 = 1;
}
