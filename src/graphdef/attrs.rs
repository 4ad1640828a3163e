//! Reading a node's attrs as TF defines them (a missing optional attr takes TF's default).

use super::decode;
use super::node::NodeIn;
use super::proto::attr_value::Value;
use crate::error::{Error, Result};
use crate::ops::Padding;
use crate::tensor::{DType, Shape, Tensor};

impl NodeIn<'_> {
    pub(super) fn attr(&self, key: &str) -> Option<&Value> {
        self.def.attr.get(key).and_then(|a| a.value.as_ref())
    }

    pub(super) fn missing(&self, key: &str) -> Error {
        Error::invalid_argument(format!("NodeDef missing attr '{key}' of op '{}'", self.def.op))
    }

    pub(super) fn attr_type(&self, key: &str) -> Result<DType> {
        match self.attr(key) {
            Some(Value::Type(t)) => decode::dtype(*t, &self.name),
            _ => Err(self.missing(key)),
        }
    }

    pub(super) fn attr_bool(&self, key: &str) -> Result<bool> {
        self.attr_bool_or(key, false)
    }

    pub(super) fn attr_bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.attr(key) {
            Some(Value::B(b)) => Ok(*b),
            None => Ok(default),
            Some(_) => Err(self.missing(key)),
        }
    }

    pub(super) fn attr_int(&self, key: &str) -> Result<i64> {
        match self.attr(key) {
            Some(Value::I(i)) => Ok(*i),
            None => Ok(0),
            Some(_) => Err(self.missing(key)),
        }
    }

    pub(super) fn attr_float(&self, key: &str, default: f32) -> Result<f32> {
        match self.attr(key) {
            Some(Value::F(f)) => Ok(*f),
            None => Ok(default),
            Some(_) => Err(self.missing(key)),
        }
    }

    pub(super) fn attr_str(&self, key: &str) -> Option<String> {
        match self.attr(key) {
            Some(Value::S(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }

    pub(super) fn attr_shape(&self, key: &str) -> Result<Option<Shape>> {
        match self.attr(key) {
            Some(Value::Shape(s)) => decode::shape(s, &self.name).map(Some),
            _ => Ok(None),
        }
    }

    pub(super) fn attr_tensor(&self, key: &str) -> Result<Tensor> {
        match self.attr(key) {
            Some(Value::Tensor(t)) => decode::tensor(t, &self.name),
            _ => Err(self.missing(key)),
        }
    }

    pub(super) fn attr_usizes(&self, key: &str) -> Result<Vec<usize>> {
        match self.attr(key) {
            Some(Value::List(l)) => {
                l.i.iter()
                    .map(|&v| usize::try_from(v).map_err(|_| Error::invalid_argument(format!("attr '{key}': {v} < 0"))))
                    .collect()
            }
            _ => Err(self.missing(key)),
        }
    }

    pub(super) fn attr_usizes_or(&self, key: &str, default: &[usize]) -> Result<Vec<usize>> {
        if self.attr(key).is_none() {
            return Ok(default.to_vec());
        }
        self.attr_usizes(key)
    }

    pub(super) fn padding(&self) -> Result<Padding> {
        match self.attr_str("padding").as_deref() {
            Some("SAME") => Ok(Padding::Same),
            Some("VALID") => Ok(Padding::Valid),
            Some(other) => Err(Error::unimplemented(format!("{}: padding '{other}' is not supported", self.def.op))),
            None => Err(self.missing("padding")),
        }
    }

    /// `data_format` must be NHWC (absent means NHWC).
    pub(super) fn nhwc(&self) -> Result<()> {
        match self.attr_str("data_format").as_deref() {
            None | Some("NHWC") => Ok(()),
            Some(other) => {
                Err(Error::unimplemented(format!("{}: data_format {other}; wgflow computes NHWC only", self.def.op)))
            }
        }
    }
}
