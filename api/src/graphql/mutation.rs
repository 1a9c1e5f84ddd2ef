//! The `Mutation` root. Member mutations take the Boards client's shapes (contract §1.6).

use boards_shared::domain::{
    boards::{self as board_ops, CreateBoard, UpdateBoard},
    members,
};
use juniper::graphql_object;
use uuid::Uuid;

use super::{
    context::Context,
    errors::GqlResult,
    scalars::BoardsScalar,
    types::{
        enums::BoardRole,
        inputs::{CreateBoardInput, UpdateBoardInput},
        BoardMemberObj, BoardObj, OperationResult,
    },
};

pub struct Mutation;

#[graphql_object(context = Context, scalar = BoardsScalar)]
impl Mutation {
    async fn create_board(ctx: &Context, input: CreateBoardInput) -> GqlResult<BoardObj> {
        let actor = ctx.actor("create a board")?;
        let mut conn = ctx.conn().await?;
        let board = board_ops::create_board(
            &mut conn,
            &actor,
            CreateBoard {
                title: input.title,
                description: input.description,
                is_public: input.is_public,
                settings: input.settings.map(|j| j.0),
            },
        )
        .await?;
        Ok(BoardObj(board))
    }

    async fn update_board(ctx: &Context, input: UpdateBoardInput) -> GqlResult<BoardObj> {
        let actor = ctx.actor("update a board")?;
        let mut conn = ctx.conn().await?;
        let board = board_ops::update_board(
            &mut conn,
            &actor,
            input.id,
            UpdateBoard {
                title: input.title,
                description: input.description,
                is_public: input.is_public,
                settings: input.settings.map(|j| j.0),
            },
        )
        .await?;
        Ok(BoardObj(board))
    }

    async fn delete_board(ctx: &Context, id: Uuid) -> GqlResult<OperationResult> {
        let actor = ctx.actor("delete a board")?;
        let mut conn = ctx.conn().await?;
        board_ops::delete_board(&mut conn, &actor, id).await?;
        Ok(OperationResult::SUCCESS)
    }

    /// Adds the user with `email` (in the board's tenant) as a member.
    async fn add_board_member(
        ctx: &Context,
        board_id: Uuid,
        email: String,
        role: BoardRole,
    ) -> GqlResult<BoardMemberObj> {
        let actor = ctx.actor("add a board member")?;
        let mut conn = ctx.conn().await?;
        let member =
            members::add_member_by_email(&mut conn, &actor, board_id, &email, role.into()).await?;
        Ok(BoardMemberObj(member))
    }

    /// Changes the role of the membership `id`.
    async fn update_board_member_role(
        ctx: &Context,
        id: Uuid,
        role: BoardRole,
    ) -> GqlResult<BoardMemberObj> {
        let actor = ctx.actor("change a member's role")?;
        let mut conn = ctx.conn().await?;
        let member = members::update_member_role(&mut conn, &actor, id, role.into()).await?;
        Ok(BoardMemberObj(member))
    }

    /// Removes the membership `id`.
    async fn remove_board_member(ctx: &Context, id: Uuid) -> GqlResult<OperationResult> {
        let actor = ctx.actor("remove a board member")?;
        let mut conn = ctx.conn().await?;
        members::remove_member(&mut conn, &actor, id).await?;
        Ok(OperationResult::SUCCESS)
    }
}
